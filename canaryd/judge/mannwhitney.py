"""Mann-Whitney U test and the Hodges-Lehmann confidence interval by normal approximation, the way
Kayenta's ``MannWhitney`` computes them (as R's ``wilcox.test(exact=FALSE, correct=TRUE, conf.int=TRUE)``).

Kayenta finds each end of the interval as the root of ``f(mu) = (dz(mu) - cc) / sigma - q``, where
``dz`` is the canary's rank sum of ``canary - mu`` among the primary's, minus its mean, ``cc`` the continuity
correction (half, towards zero) and ``sigma`` the tie-corrected standard deviation. ``f`` is a step
function of ``mu`` that jumps only where ``mu`` equals a pairwise difference ``canary_i - primary_j``, so
each root is one of those differences: this module finds which one exactly, by counting, instead of
iterating a root finder (Kayenta's stops within 1e-4 of it).
"""

from __future__ import annotations

import bisect
import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

# Up to this many pairwise differences, the order statistic is read from the sorted list of all of them;
# above it, a selection over the implicit sorted matrix avoids building millions of floats.
_MATERIALISE_LIMIT = 250_000


class AllTiedError(ValueError):
    """Every observation of both samples is the same value: no interval can be computed."""


@dataclass(frozen=True)
class MannWhitneyResult:
    u: float  # U of the first sample (the canary): pairs where it is larger, ties counted half
    p_value: float  # two-sided, normal approximation with tie and continuity correction
    lower: float  # confidence interval for the location shift first - second
    upper: float
    estimate: float  # Hodges-Lehmann estimate: median of the pairwise differences


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties given the average of the ranks they span."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        rank = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = rank
        i = j + 1
    return ranks


def _tie_term(counts: Counter[float]) -> float:
    return float(sum(t ** 3 - t for t in counts.values() if t > 1))


def _sigma(nx: int, ny: int, ties: float) -> float:
    n = nx + ny
    inner = (n + 1) - ties / (n * (n - 1))
    return math.sqrt(max(0.0, nx * ny / 12 * inner))


def wilcoxon_diff(mu: float, q: float, x: Sequence[float], y: Sequence[float]) -> float:
    """Kayenta's (and R's) ``f(mu)`` evaluated directly by ranking ``x - mu`` among ``y``."""
    shifted = [v - mu for v in x]
    combined = shifted + list(y)
    ranks = average_ranks(combined)
    nx, ny = len(x), len(y)
    dz = sum(ranks[:nx]) - nx * (nx + 1) / 2 - nx * ny / 2
    correction = math.copysign(0.5, dz) if dz != 0 else 0.0
    sigma = _sigma(nx, ny, _tie_term(Counter(combined)))
    if sigma == 0:
        raise AllTiedError("cannot compute a confidence interval when all observations are tied")
    return (dz - correction) / sigma - q


def u_statistic(x: Sequence[float], y: Sequence[float]) -> float:
    """U of ``x``: the number of pairs (x_i, y_j) with x_i > y_j, ties counted half."""
    ranks = average_ranks(list(x) + list(y))
    nx = len(x)
    return sum(ranks[:nx]) - nx * (nx + 1) / 2


def p_value(x: Sequence[float], y: Sequence[float]) -> float:
    """Two-sided p-value of the U test by normal approximation with tie and continuity correction
    (what ``scipy.stats.mannwhitneyu(x, y, method="asymptotic")`` returns); 1.0 when all are tied."""
    nx, ny = len(x), len(y)
    u1 = u_statistic(x, y)
    u = max(u1, nx * ny - u1)
    sigma = _sigma(nx, ny, _tie_term(Counter(list(x) + list(y))))
    if sigma == 0:
        return 1.0
    z = (u - nx * ny / 2 - 0.5) / sigma
    return min(1.0, max(0.0, math.erfc(z / math.sqrt(2))))


def _g(count: int, half: float) -> float:
    """``dz - correction`` when ``count`` pairs have x_i - mu > y_j (no cross ties)."""
    dz = count - half
    return dz - math.copysign(0.5, dz) if dz != 0 else 0.0


def _first_count_above(threshold: float, pairs: int) -> int:
    """Smallest count c in [0, pairs] with ``_g(c) > threshold``; ``pairs + 1`` when there is none."""
    lo, hi = 0, pairs + 1
    half = pairs / 2
    while lo < hi:
        mid = (lo + hi) // 2
        if _g(mid, half) > threshold:
            hi = mid
        else:
            lo = mid + 1
    return lo


def kth_difference(xs: Sequence[float], ys: Sequence[float], k: int) -> float:
    """The k-th smallest (1-based) of all ``x_i - y_j``; ``xs`` and ``ys`` sorted ascending."""
    nx, ny = len(xs), len(ys)
    if nx * ny <= _MATERIALISE_LIMIT:
        return sorted([a - b for a in xs for b in ys])[k - 1]
    return _select(xs, ys, k)


def _select(xs: Sequence[float], ys: Sequence[float], k: int) -> float:
    """Randomised selection over the rows ``x_i - ys[::-1]`` (each ascending), narrowing per row the
    column range that can still hold the answer. Deterministic: the generator is seeded."""
    ydesc = list(reversed(ys))
    ny = len(ydesc)
    lo = [0] * len(xs)  # candidates of row i are columns lo[i] .. hi[i]-1
    hi = [ny] * len(xs)
    below = 0  # differences known to be smaller than every candidate
    rng = random.Random(len(xs) * 1_000_003 + ny)
    while True:
        sizes = [h - low for low, h in zip(lo, hi, strict=True)]
        total = sum(sizes)
        if total <= _MATERIALISE_LIMIT:
            rest = sorted(xs[i] - ydesc[j] for i in range(len(xs)) for j in range(lo[i], hi[i]))
            return rest[k - below - 1]
        pick = rng.randrange(total)
        row = 0
        while pick >= sizes[row]:
            pick -= sizes[row]
            row += 1
        pivot = xs[row] - ydesc[lo[row] + pick]
        less: list[int] = []
        upto: list[int] = []
        for i, a in enumerate(xs):
            key = _minus_from(a)
            less.append(bisect.bisect_left(ydesc, pivot, lo[i], hi[i], key=key))
            upto.append(bisect.bisect_right(ydesc, pivot, lo[i], hi[i], key=key))
        n_less = below + sum(c - low for c, low in zip(less, lo, strict=True))
        n_upto = below + sum(c - low for c, low in zip(upto, lo, strict=True))
        if n_less < k <= n_upto:
            return pivot
        if k <= n_less:
            hi = less
        else:
            below = n_upto
            lo = upto


def _minus_from(a: float) -> Callable[[float], float]:
    """The key of row ``a``: the difference computed exactly as the materialised list computes it."""
    def key(b: float) -> float:
        return a - b
    return key


def _bound(q: float, x: Sequence[float], y: Sequence[float], xs: Sequence[float], ys: Sequence[float],
           sigma: float) -> float:
    """One end of the interval: where ``f`` (for quantile ``q``) changes sign, as Kayenta returns it."""
    mu_min, mu_max = xs[0] - ys[-1], xs[-1] - ys[0]
    if wilcoxon_diff(mu_min, q, x, y) <= 0:
        return mu_min
    if wilcoxon_diff(mu_max, q, x, y) >= 0:
        return mu_max
    pairs = len(x) * len(y)
    # f > 0 exactly where more than c* - 1 pairs stay above: left of the (pairs - c* + 1)-th difference
    count = _first_count_above(q * sigma, pairs)
    k = min(max(pairs - count + 1, 1), pairs)
    return kth_difference(xs, ys, k)


def hodges_lehmann_estimate(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Median of all pairwise differences (``xs``, ``ys`` sorted)."""
    pairs = len(xs) * len(ys)
    if pairs % 2:
        return kth_difference(xs, ys, pairs // 2 + 1)
    return (kth_difference(xs, ys, pairs // 2) + kth_difference(xs, ys, pairs // 2 + 1)) / 2


def mann_whitney(x: Sequence[float], y: Sequence[float], confidence: float) -> MannWhitneyResult:
    """U, p-value and the two-sided Hodges-Lehmann interval for the shift ``x - y`` at ``confidence``.

    :class:`AllTiedError` when every value of both samples is equal, as Kayenta throws."""
    if not x or not y:
        raise ValueError("both samples need at least one value")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be strictly between 0 and 1")
    xs, ys = sorted(x), sorted(y)
    # away from the jump points only ties inside one sample remain
    sigma = _sigma(len(x), len(y), _tie_term(Counter(x)) + _tie_term(Counter(y)))
    if sigma == 0 or xs[0] == xs[-1] == ys[0] == ys[-1]:
        raise AllTiedError("cannot compute a confidence interval when all observations are tied")
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    return MannWhitneyResult(u=u_statistic(x, y), p_value=p_value(x, y),
                             lower=_bound(z, x, y, xs, ys, sigma), upper=_bound(-z, x, y, xs, ys, sigma),
                             estimate=hodges_lehmann_estimate(xs, ys))
