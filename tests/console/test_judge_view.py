"""``kubectl canary get`` shows the judge's report: one line per judged metric under its check."""

from __future__ import annotations

from typing import Any

from canaryd.console import hub, render
from canaryd.console.judge_view import judge_lines, judge_report

REPORT: dict[str, Any] = {
    "verdict": "fail", "score": 66.67, "message": "judge: score 66.67 (fail < 75): request-latency-p99 High "
                                                  "(canary/primary 1.31, p=0.0004)",
    "metrics": [
        {"name": "request-success-rate", "classification": "Pass", "samples": {"canary": 20, "primary": 20},
         "ratio": 1.0, "pValue": 0.9},
        {"name": "request-latency-p99", "classification": "High", "samples": {"canary": 20, "primary": 21},
         "ratio": 1.3112, "pValue": 0.00041},
        {"name": "errors", "classification": "Nodata", "samples": {"canary": 3, "primary": 20},
         "dryRun": True},
    ],
}
CANARY: dict[str, Any] = {
    "metadata": {"namespace": "test", "name": "podinfo", "generation": 1},
    "spec": {"analysis": {"threshold": 1, "maxWeight": 50, "stepWeight": 10}},
    "status": {"phase": "Progressing", "canaryWeight": 10, "observedGeneration": 1, "checks": [
        {"name": "judge", "verdict": "fail", "value": 66.67, "threshold": ">= 95", "kind": "judge",
         "message": REPORT["message"], "judge": REPORT}]},
}


def test_one_line_per_judged_metric() -> None:
    assert judge_lines(CANARY["status"]["checks"][0]) == [
        "    request-success-rate  Pass             canary/primary 1.00  p=0.9  samples 20/20",
        "    request-latency-p99   High             canary/primary 1.31  p=0.00041  samples 20/21",
        "    errors                Nodata           canary/primary n/a  p=n/a  samples 3/20 [dry run]",
    ]
    assert judge_lines({"name": "request-duration", "verdict": "pass"}) == []
    assert judge_lines({"name": "judge", "judge": {"metrics": "bad"}}) == []


def test_get_shows_them_under_the_judge_check() -> None:
    lines = render.view(CANARY, [], 0)
    at = lines.index("checks:")
    assert lines[at + 1].startswith("  judge       66.67  >= 95        FAIL  judge: score 66.67 (fail < 75)")
    assert lines[at + 3] == judge_lines(CANARY["status"]["checks"][0])[1]
    assert lines[at + 2:at + 5] == judge_lines(CANARY["status"]["checks"][0])


def test_the_dashboard_gets_the_report_with_its_check_name() -> None:
    """The canary page's judge table (console/static/app.js) reads ``judge`` of the Canary's summary."""
    page = hub.summary(CANARY)["judge"]
    assert page == {**REPORT, "check": "judge"}
    assert [m["samples"] for m in page["metrics"]][1] == {"canary": 20, "primary": 21}
    without = {**CANARY, "status": {"checks": [{"name": "request-duration", "verdict": "pass"}, "junk"]}}
    assert hub.summary(without)["judge"] is None
    assert judge_report({"checks": [{"judge": {"score": 0.0}}]}) == {"score": 0.0, "check": "judge"}
