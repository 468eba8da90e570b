"""Kayenta's metric classification rules, as plain tables (docs/judge.md, "Classification")."""

from __future__ import annotations

import math
import random

import pytest

from canaryd.judge.classify import MetricConfig, _compare, classify

RNG = random.Random(11)
BASE = [RNG.gauss(100, 5) for _ in range(30)]
SAME_SPREAD = [RNG.gauss(100, 5) for _ in range(30)]
UP = [v * 1.5 for v in SAME_SPREAD]  # +50 %
DOWN = [v * 0.6 for v in SAME_SPREAD]  # -40 %


def cfg(**kw: object) -> MetricConfig:
    return MetricConfig(name="m", min_samples=kw.pop("min_samples", 3), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("canary", "primary", "settings", "label", "critical"), [
    (UP, BASE, {}, "High", False),  # direction defaults to either, as in Kayenta
    (DOWN, BASE, {}, "Low", False),
    (SAME_SPREAD, BASE, {}, "Pass", False),
    (UP, BASE, {"direction": "increase"}, "High", False),
    (UP, BASE, {"direction": "decrease"}, "Pass", False),
    (DOWN, BASE, {"direction": "increase"}, "Pass", False),
    (DOWN, BASE, {"direction": "decrease"}, "Low", False),
    # the effect size (mean ratio 1.5) must reach the allowed increase
    (UP, BASE, {"allowed_increase": 1.6}, "Pass", False),
    (UP, BASE, {"allowed_increase": 1.4}, "High", False),
    (DOWN, BASE, {"allowed_decrease": 0.5}, "Pass", False),
    (DOWN, BASE, {"allowed_decrease": 0.7}, "Low", False),
    # critical: a High/Low beyond the critical effect size fails the run
    (UP, BASE, {"critical": True}, "High", True),
    (UP, BASE, {"critical": True, "critical_increase": 2.0}, "High", False),
    (DOWN, BASE, {"critical": True, "critical_decrease": 0.5}, "Low", False),
    (SAME_SPREAD, BASE, {"critical": True}, "Pass", False),
    # common-language effect size: share of pairs where the canary is higher (default allowance 0.5)
    (UP, BASE, {"effect_measure": "cles"}, "High", False),
    (UP, BASE, {"effect_measure": "cles", "allowed_increase": 1.01}, "Pass", False),
    # all ties on each side, different values: Kayenta breaks the ties with tiny noise, the shift decides
    ([2.0] * 5, [1.0] * 5, {}, "High", False),
    ([1.0] * 5, [2.0] * 5, {}, "Low", False),
    ([2.0] * 5, [1.0] * 5, {"direction": "decrease"}, "Pass", False),
    ([2.0] * 5, [1.0] * 5, {"allowed_increase": 2.5}, "Pass", False),
    # identical data (in any order) and a single value everywhere pass
    (list(reversed(BASE)), BASE, {}, "Pass", False),
    ([7.0] * 4, [7.0] * 9, {}, "Pass", False),
    # a mean of 0: the effect size is undefined and ignored
    ([1.0, 2.0, 3.0, 4.0, 5.0], [0.0] * 5, {"allowed_increase": 100.0}, "High", False),
])
def test_classification(canary: list[float], primary: list[float], settings: dict[str, object], label: str,
                        critical: bool) -> None:
    got = classify(canary, primary, cfg(**settings))
    assert (got.classification, got.critical) == (label, critical)
    assert (got.canary_count, got.primary_count) == (len(canary), len(primary))


@pytest.mark.parametrize(("lower", "upper", "estimate", "direction", "label"), [
    # significant but smaller than the tolerance: the interval's end must clear 25 % of the estimate
    (0.1, 1.0, 0.5, "either", "Pass"),
    (0.13, 1.0, 0.5, "either", "High"),
    (0.125, 1.0, 0.5, "either", "Pass"),  # strictly greater
    (-1.0, -0.1, -0.5, "either", "Pass"),
    (-1.0, -0.13, -0.5, "either", "Low"),
    (-1.0, -0.13, -0.5, "increase", "Pass"),
    (0.0, 0.0, 0.0, "either", "Pass"),
])
def test_interval_against_tolerance(lower: float, upper: float, estimate: float, direction: str,
                                    label: str) -> None:
    assert _compare(lower, upper, estimate, None, cfg(direction=direction)) == label


@pytest.mark.parametrize(("canary", "primary", "settings", "label", "critical", "reason"), [
    ([], BASE, {}, "Nodata", False, "Missing data for m: canary 0, primary 30 samples"),
    ([], BASE, {"critical": True}, "Nodata", True, "Missing data"),
    ([], BASE, {"must_have_data": True}, "NodataFailMetric", False, "Missing data"),
    ([], BASE, {"must_have_data": True, "critical": True}, "Nodata", True, "Missing data"),
    ([], BASE, {"nan_strategy": "replace"}, "Pass", False, None),
    ([math.nan] * 8, BASE, {}, "Nodata", False, "canary 0, primary 30"),
    ([1.0, 2.0], BASE, {"min_samples": 10}, "Nodata", False, "too few samples for m: canary 2, primary 30, "
                                                             "need 10"),
    ([1.0, 2.0], BASE, {"min_samples": 10, "must_have_data": True}, "NodataFailMetric", False, "need 10"),
])
def test_no_data(canary: list[float], primary: list[float], settings: dict[str, object], label: str,
                 critical: bool, reason: str | None) -> None:
    got = classify(canary, primary, cfg(**settings))
    assert (got.classification, got.critical) == (label, critical)
    if reason is None:
        assert got.reason is None
    else:
        assert got.reason is not None and reason in got.reason


def test_nan_and_infinity_are_dropped_or_replaced() -> None:
    noisy = [*SAME_SPREAD, math.nan, math.inf]
    assert classify(noisy, BASE, cfg()).canary_count == 30
    replaced = classify(noisy, BASE, cfg(nan_strategy="replace"))
    assert replaced.canary_count == 32 and replaced.canary_median is not None


def test_report_numbers() -> None:
    got = classify([2.0, 4.0, 6.0], [1.0, 2.0, 3.0], cfg())
    assert (got.canary_median, got.primary_median, got.ratio) == (4.0, 2.0, 2.0)
    assert got.u == 7.5  # pairs canary > primary: 2>1, 4>1,2,3, 6>1,2,3; 2=2 counts half
    assert got.lower is not None and got.upper is not None and got.estimate == 2.0
    assert got.p_value is not None and 0 < got.p_value < 1
    d = got.to_dict()
    assert d["samples"] == {"canary": 3, "primary": 3} and d["interval"] == [got.lower, got.upper]
