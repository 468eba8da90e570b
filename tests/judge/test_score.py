"""Kayenta's weighted group scoring and score thresholds, as plain tables (docs/judge.md, "Scoring")."""

from __future__ import annotations

import pytest

from canaryd.judge.classify import Label, MetricResult
from canaryd.judge.score import GroupScore, group_score, round2, score, summary, summary_score


def result(label: Label, *, groups: tuple[str, ...] = ("default",), critical: bool = False,
           dry_run: bool = False, name: str = "m") -> MetricResult:
    return MetricResult(name=name, classification=label, reason=f"{name} was classified as {label}",
                        critical=critical, groups=groups, dry_run=dry_run, canary_count=10, primary_count=10)


@pytest.mark.parametrize(("labels", "value", "no_data"), [
    (["Pass", "Pass"], 100.0, False),
    (["Pass", "High"], 50.0, False),
    (["Pass", "High", "Low"], 100 / 3, False),
    (["Pass", "Nodata"], 100.0, False),  # Nodata and Error are left out of the group's total
    (["Pass", "Error", "High"], 50.0, False),
    (["Pass", "NodataFailMetric"], 50.0, False),  # must-have-data metrics without data count as failed
    (["Nodata", "Error"], 0.0, True),
])
def test_group_score(labels: list[str], value: float, no_data: bool) -> None:
    got = group_score("g", labels)
    assert got.score == pytest.approx(value) and got.no_data == no_data


@pytest.mark.parametrize(("groups", "weights", "value"), [
    ({"a": (50.0, False)}, {}, 50.0),
    ({"a": (50.0, False), "b": (100.0, False)}, {}, 75.0),  # unweighted groups share 100 equally
    ({"a": (50.0, False), "b": (100.0, False), "c": (0.0, True)}, {"a": 60.0}, 70.0),  # no data = 100
    ({"a": (50.0, False), "b": (100.0, False)}, {"a": 80.0, "b": 20.0}, 60.0),
    ({"a": (100.0, False)}, {"a": 50.0, "gone": 50.0}, 50.0),  # a weighted group without metrics
    ({"a": (100 / 3, False), "b": (100.0, False)}, {"a": 50.0}, 66.67),  # two decimals
])
def test_summary_score(groups: dict[str, tuple[float, bool]], weights: dict[str, float],
                       value: float) -> None:
    built = [GroupScore(name=n, score=s, no_data=nd, counts=()) for n, (s, nd) in groups.items()]
    assert summary_score(built, weights) == value


@pytest.mark.parametrize(("value", "want"), [(66.665, 66.67), (66.664, 66.66), (0.005, 0.01), (100.0, 100.0)])
def test_rounding_is_half_up(value: float, want: float) -> None:
    assert round2(value) == want


def test_critical_failure_scores_zero() -> None:
    got = score([result("Pass", name="a"), result("High", name="b", critical=True)], {})
    assert got.score == 0.0 and got.critical_failures == ("b",)
    assert got.reason == "Canary Failed: b was classified as High"


def test_critical_nodata_scores_zero() -> None:
    got = score([result("Pass", name="a"), result("Pass", name="c"),
                 result("Nodata", name="b", critical=True)], {})
    assert got.score == 0.0 and got.critical_failures == ("b",)


@pytest.mark.parametrize(("labels", "zero"), [
    (["Nodata", "Nodata", "Pass", "Pass"], True),  # 50 % or more
    (["Nodata", "Pass", "Pass"], False),
    (["Nodata"], True),
    (["NodataFailMetric", "NodataFailMetric", "Pass"], False),  # only Nodata counts here
])
def test_too_many_nodata(labels: list[Label], zero: bool) -> None:
    got = score([result(label, name=str(i)) for i, label in enumerate(labels)], {})
    assert got.too_many_nodata == zero
    if zero:
        assert got.score == 0.0 and got.reason == "Canary Failed: 50% or more metrics returned NODATA"
    else:
        assert got.score > 0


def test_dry_run_metrics_are_not_scored() -> None:
    got = score([result("Pass", name="a"), result("High", name="b", dry_run=True, critical=True)], {})
    assert got.score == 100.0 and not got.critical_failures


def test_a_metric_in_two_groups_counts_in_both() -> None:
    got = score([result("High", groups=("a", "b"), name="x"), result("Pass", groups=("a",), name="y")], {})
    assert {g.name: g.score for g in got.groups} == {"a": 50.0, "b": 0.0}
    assert got.score == 25.0


def test_no_metrics_scores_zero() -> None:
    assert score([], {}).score == 0.0


@pytest.mark.parametrize(("value", "label"), [
    (100.0, "Pass"), (95.0, "Pass"), (94.99, "Marginal"), (75.0, "Marginal"), (74.99, "Fail"), (0.0, "Fail"),
])
def test_thresholds(value: float, label: str) -> None:
    assert summary(value, 95.0, 75.0) == label
