"""canaryd's Mann-Whitney statistics against references: the interval against a brute-force scan of
all pairwise differences, U and the p-value against scipy.stats.mannwhitneyu, on thousands of seeded
cases (continuous, heavily tied, shifted, lopsided sizes)."""

from __future__ import annotations

import random
from statistics import NormalDist

import pytest
from scipy import stats

from canaryd.judge import mannwhitney as mw

from . import reference

CONFIDENCES = (0.8, 0.9, 0.95, 0.98, 0.99, 0.999)


def sample(rng: random.Random, n: int, kind: str, shift: float) -> list[float]:
    if kind == "tied":  # few distinct values, as success rates and bucket-bound quantiles give
        return [float(rng.randint(0, 4)) + shift for _ in range(n)]
    if kind == "lognormal":
        return [rng.lognormvariate(0, 1) * (1 + shift) for _ in range(n)]
    if kind == "mixed":  # a constant with outliers
        return [1.0 if rng.random() < 0.7 else rng.gauss(1 + shift, 0.5) for _ in range(n)]
    return [rng.gauss(shift, 1) for _ in range(n)]


def cases(seed: int, count: int, max_n: int) -> list[tuple[list[float], list[float], float]]:
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        kind = rng.choice(("tied", "lognormal", "mixed", "normal"))
        x = sample(rng, rng.randint(1, max_n), kind, rng.choice((0.0, 0.0, 0.2, 1.0, -0.5)))
        y = sample(rng, rng.randint(1, max_n), kind, 0.0)
        if len(set(x) | set(y)) > 1 and not (len(set(x)) == 1 and len(set(y)) == 1):
            out.append((x, y, rng.choice(CONFIDENCES)))
    return out


@pytest.mark.parametrize("chunk", range(6))
def test_interval_matches_a_scan_of_every_pairwise_difference(chunk: int) -> None:
    for x, y, confidence in cases(chunk, 500, 12):
        got = mw.mann_whitney(x, y, confidence)
        z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
        # exact up to the last bit of a difference: a - b and c - d equal in reals may differ by an ulp
        assert got.lower == pytest.approx(reference.bound(z, x, y), abs=1e-12), (x, y)
        assert got.upper == pytest.approx(reference.bound(-z, x, y), abs=1e-12), (x, y)
        assert got.estimate == pytest.approx(reference.median(reference.differences(x, y)), abs=1e-12)
        assert got.lower <= got.estimate <= got.upper


def test_interval_on_bigger_samples_matches_the_bisected_reference() -> None:
    for x, y, confidence in cases(100, 150, 60):
        got = mw.mann_whitney(x, y, confidence)
        z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
        assert got.lower == pytest.approx(reference.bound_bisect(z, x, y), abs=1e-12)
        assert got.upper == pytest.approx(reference.bound_bisect(-z, x, y), abs=1e-12)


@pytest.mark.parametrize("chunk", range(4))
def test_u_and_p_value_match_scipy(chunk: int) -> None:
    for x, y, _ in cases(1000 + chunk, 1000, 40):
        want = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)
        assert mw.u_statistic(x, y) == pytest.approx(float(want.statistic), abs=1e-9)
        assert mw.p_value(x, y) == pytest.approx(float(want.pvalue), rel=1e-9, abs=1e-12)


def test_selection_without_building_every_difference_gives_the_same_order_statistics() -> None:
    rng = random.Random(7)
    x = sorted([rng.lognormvariate(0, 1) for _ in range(600)] + [1.0] * 40)
    y = sorted([rng.lognormvariate(0.1, 1) for _ in range(550)] + [1.0] * 30)
    assert len(x) * len(y) > 250_000  # the selection path, not the materialised one
    every = reference.differences(x, y)
    for k in (1, 2, 1000, len(every) // 2, len(every) - 7, len(every)):
        assert mw.kth_difference(x, y, k) == every[k - 1]


def test_a_clear_shift_is_inside_the_interval_and_zero_is_not() -> None:
    rng = random.Random(3)
    x = [rng.gauss(10, 1) for _ in range(50)]
    y = [rng.gauss(8, 1) for _ in range(50)]
    got = mw.mann_whitney(x, y, 0.98)
    assert 0 < got.lower < 2 < got.upper
    assert got.p_value < 1e-6


def test_all_tied_is_refused_as_kayenta_does() -> None:
    with pytest.raises(mw.AllTiedError):
        mw.mann_whitney([3.0, 3.0], [3.0, 3.0, 3.0], 0.98)
    with pytest.raises(mw.AllTiedError):  # Kayenta throws when it evaluates f where both collapse
        mw.mann_whitney([3.0, 3.0], [1.0], 0.98)
    assert mw.p_value([3.0, 3.0], [3.0]) == 1.0


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.5, 1.5])
def test_confidence_out_of_range_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        mw.mann_whitney([1.0, 2.0], [3.0, 4.0], bad)


def test_empty_sample_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        mw.mann_whitney([], [1.0], 0.98)
