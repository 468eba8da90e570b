"""Brute-force references for canaryd.judge.mannwhitney: every pairwise difference (the two-sample
Walsh averages) listed, and Kayenta's f(mu) evaluated between each two of them, no counting shortcut."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from canaryd.judge.mannwhitney import wilcoxon_diff


def differences(x: Sequence[float], y: Sequence[float]) -> list[float]:
    return sorted(a - b for a in x for b in y)


def bound(q: float, x: Sequence[float], y: Sequence[float]) -> float:
    """Where f(mu) - as Kayenta's root finder sees it - changes sign, scanning every difference."""
    d = differences(x, y)
    if wilcoxon_diff(d[0], q, x, y) <= 0:
        return d[0]
    if wilcoxon_diff(d[-1], q, x, y) >= 0:
        return d[-1]
    distinct = sorted(set(d))
    for left, right in itertools.pairwise(distinct):
        if wilcoxon_diff((left + right) / 2, q, x, y) <= 0:
            return left
    return distinct[-1]


def bound_bisect(q: float, x: Sequence[float], y: Sequence[float]) -> float:
    """The same by bisection over the listed differences (for samples too big to scan)."""
    d = differences(x, y)
    if wilcoxon_diff(d[0], q, x, y) <= 0:
        return d[0]
    if wilcoxon_diff(d[-1], q, x, y) >= 0:
        return d[-1]
    distinct = sorted(set(d))
    lo, hi = 0, len(distinct) - 1  # the first gap (between distinct[i] and distinct[i+1]) where f <= 0
    while lo < hi:
        mid = (lo + hi) // 2
        if wilcoxon_diff((distinct[mid] + distinct[mid + 1]) / 2, q, x, y) <= 0:
            hi = mid
        else:
            lo = mid + 1
    return distinct[lo]


def median(values: Sequence[float]) -> float:
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
