"""The judge's result in status and in the run history: its report survives a status round trip, the
history keeps a shortened report of the run's last judgement, and the judge's verdict options
(``analysis.judge.nodata`` …) apply to its result in the verdict algebra."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from canaryd.engine import history, verdicts
from canaryd.engine.status import status_from_dict, status_to_dict
from canaryd.engine.types import CanaryStatus, CheckResult, Phase
from canaryd.model.parse import parse_canary
from canaryd.model.spec import CanarySpec

REPORT: dict[str, Any] = {
    "verdict": "fail", "score": 66.67, "summary": "Fail", "thresholds": {"pass": 95.0, "marginal": 75.0},
    "message": "judge: score 66.67 (fail < 75): request-latency-p99 High (canary/primary 1.31, p=0.0004)",
    "groups": [{"name": "request-latency-p99", "score": 0.0, "noData": False, "counts": {"High": 1}}],
    "metrics": [{"name": "request-latency-p99", "classification": "High", "reason": "… High",
                 "samples": {"canary": 20, "primary": 20}, "canaryMedian": 131.0, "primaryMedian": 100.0,
                 "ratio": 1.31, "effectSize": 1.31, "u": 390.0, "pValue": 0.0004, "estimate": 30.0,
                 "interval": [22.0, 41.0]}],
}
JUDGE = CheckResult(name="judge", verdict="fail", value=66.67, threshold=">= 95", message=REPORT["message"],
                    kind="judge", report=REPORT)
METRIC = CheckResult(name="request-duration", verdict="pass", value=120.0, threshold="<= 500ms")


def test_the_report_survives_a_status_round_trip() -> None:
    st = CanaryStatus(phase=Phase.PROGRESSING, checks=(METRIC, JUDGE))
    body = status_to_dict(st)
    assert body["checks"][1]["judge"] == REPORT and "judge" not in body["checks"][0]
    assert status_from_dict(body).checks == (METRIC, JUDGE)


def test_the_history_keeps_the_runs_last_judgement_shortened() -> None:
    running = CanaryStatus(phase=Phase.PROGRESSING, last_applied_spec="cd1:a", run_started_at=100.0,
                           canary_weight=20, checks=(METRIC, JUDGE))
    failed = replace(running, phase=Phase.FAILED, canary_weight=0, message="Rolling back")
    run = history.record(running, failed, 200.0).history[0]
    assert run.outcome == "rolled back"
    short = {"name": "request-latency-p99", "classification": "High",
             "samples": {"canary": 20, "primary": 20}, "ratio": 1.31, "pValue": 0.0004}
    assert run.judge == {"verdict": "fail", "score": 66.67, "message": REPORT["message"], "metrics": [short]}
    assert [c.name for c in run.failed_checks] == ["judge"] and run.failed_checks[0].report is None
    again = status_from_dict(status_to_dict(replace(failed, history=(run,))))
    assert again.history[0].judge == run.judge
    # a promoted run keeps its judgement too (a passing one), with no failed checks
    passed = replace(JUDGE, verdict="pass", report={**REPORT, "verdict": "pass", "score": 100.0})
    done = history.record(replace(running, checks=(passed,)), replace(running, phase=Phase.SUCCEEDED,
                                                                   checks=(passed,)), 300.0).history[0]
    assert (done.outcome, done.failed_checks, (done.judge or {}).get("verdict")) == ("promoted", (), "pass")


def _spec(judge: dict[str, Any]) -> CanarySpec:
    spec = parse_canary({"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
                         "metadata": {"name": "podinfo", "namespace": "test", "uid": "u", "generation": 1},
                         "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                                "name": "podinfo"},
                                  "service": {"port": 9898},
                                  "analysis": {"interval": "1m", "threshold": 1, "stepWeight": 10,
                                               "judge": judge}}})
    assert isinstance(spec, CanarySpec), spec
    return spec


def test_the_judges_verdict_options_apply_to_its_result() -> None:
    nodata = replace(JUDGE, verdict="nodata", message="judge: no data for 3 of 3 metrics")
    spec = _spec({"preset": "istio", "nodata": "ignore"})
    ignored = verdicts.judge_step(verdicts.step_measurements(spec, (), (METRIC, nodata)), (), None)
    assert ignored.outcome == "pass" and ignored.results[1].counted is False
    spec = _spec({"preset": "istio"})
    counted = verdicts.judge_step(verdicts.step_measurements(spec, (), (METRIC, nodata)), (), None)
    assert counted.outcome == "fail" and counted.failure is not None and counted.failure.kind == "judge"
    dry = verdicts.judge_step(verdicts.step_measurements(_spec({"preset": "istio", "dryRun": True}), (),
                                                         (METRIC, JUDGE)), (), None)
    assert dry.outcome == "pass" and dry.results[1].dry_run and dry.results[1].report == REPORT
