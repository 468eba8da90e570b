"""The judge end to end on plain data: canaryd's verdict, the status report and the check's message."""

from __future__ import annotations

import json
import random

import pytest

from canaryd.judge.classify import MetricConfig, MetricResult
from canaryd.judge.judge import JudgeConfig, JudgeReport, QueryFailed, Samples, describe, judge, message

RNG = random.Random(5)
FLAT = tuple(RNG.gauss(100, 5) for _ in range(20))
OTHER = tuple(RNG.gauss(100, 5) for _ in range(20))
SLOW = tuple(v * 1.31 for v in reversed(FLAT))

SAME = Samples(OTHER, FLAT)
HIGH = Samples(SLOW, FLAT)
FEW = Samples(OTHER[:3], FLAT)


def config(*names: str, critical: tuple[str, ...] = (), dry: tuple[str, ...] = ()) -> JudgeConfig:
    return JudgeConfig(metrics=tuple(MetricConfig(name=n, direction="increase", critical=n in critical,
                                                  dry_run=n in dry) for n in names))


@pytest.mark.parametrize(("data", "critical", "dry", "verdict", "value", "head"), [
    ({"a": SAME, "b": SAME, "c": SAME}, (), (), "pass", 100.0, "judge: score 100 (pass ≥ 95)"),
    ({"a": SAME, "b": SAME, "c": SAME, "d": HIGH}, (), (), "inconclusive", 75.0,
     "judge: score 75 (marginal < 95): d High (canary/primary 1.31, p="),
    ({"a": SAME, "b": SAME, "c": HIGH}, (), (), "fail", 66.67,
     "judge: score 66.67 (fail < 75): c High (canary/primary 1.31, p="),
    ({"a": SAME, "b": SAME, "c": HIGH}, ("c",), (), "fail", 0.0,
     "judge: score 0 (fail: critical c): c High (canary/primary 1.31, p="),
    ({"a": SAME, "b": SAME, "c": HIGH}, (), ("c",), "pass", 100.0,
     "judge: score 100 (pass ≥ 95): c [dry run] High (canary/primary 1.31, p="),
    ({"a": SAME, "b": FEW, "c": FEW}, (), (), "nodata", 0.0,
     "judge: no data for 2 of 3 metrics: b Nodata (too few samples for b: canary 3, primary 20, need 20)"),
    ({"a": SAME, "b": SAME, "c": QueryFailed("primary: Prometheus timed out after 5s")}, (), (), "error",
     100.0,
     "judge: could not measure: c Error (primary: Prometheus timed out after 5s)"),
    # the failed metric could not have lifted the score above the marginal threshold: still a fail
    ({"a": HIGH, "b": HIGH, "c": QueryFailed("down")}, (), (), "fail", 0.0, "judge: score 0 (fail < 75)"),
    ({"a": SAME, "b": SAME}, (), (), "error", 100.0, "judge: could not measure: c Error (no query result)"),
])
def test_verdicts(data: dict[str, Samples | QueryFailed], critical: tuple[str, ...], dry: tuple[str, ...],
                  verdict: str, value: float, head: str) -> None:
    report = judge(config("a", "b", "c", *(["d"] if "d" in data else []), critical=critical, dry=dry), data)
    assert (report.verdict, report.score) == (verdict, value)
    assert report.message.startswith(head), report.message


def test_message_of_the_issue() -> None:
    high = MetricResult(name="latency-p99", classification="High", reason="x", critical=False,
                        groups=("default",), dry_run=False, canary_count=20, primary_count=20, ratio=1.3104,
                        p_value=0.0004)
    ok = MetricResult(name="success-rate", classification="Pass", reason=None, critical=False,
                      groups=("default",), dry_run=False, canary_count=20, primary_count=20)
    report = JudgeReport(metrics=(ok, high), groups=(), score=62.0, summary="Fail", verdict="fail",
                         pass_threshold=95.0, marginal_threshold=75.0, reason=None)
    assert message(report) == "judge: score 62 (fail < 75): latency-p99 High (canary/primary 1.31, p=0.0004)"
    assert describe(ok) == "success-rate Pass"


def test_report_is_plain_json_for_status() -> None:
    data = {"a": SAME, "b": FEW, "c": HIGH, "d": QueryFailed("down"), "e": Samples((), ())}
    report = judge(config("a", "b", "c", "d", "e"), data)
    out = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert out["verdict"] == report.verdict and out["message"] == report.message
    assert [m["classification"] for m in out["metrics"]] == ["Pass", "Nodata", "High", "Error", "Nodata"]
    high = out["metrics"][2]
    assert high["samples"] == {"canary": 20, "primary": 20}
    assert set(high) >= {"canaryMedian", "primaryMedian", "ratio", "u", "pValue", "interval", "estimate"}
    assert out["thresholds"] == {"pass": 95.0, "marginal": 75.0}
    assert out["groups"][0]["name"] == "default"
