"""wait's decision as a table: which revision, and whether its run ended promoted or rolled back."""

from __future__ import annotations

from typing import Any

import pytest

from canaryd.console.wait_result import FAILED, PENDING, PROMOTED, RevisionError, judge, revision_of
from canaryd.engine.revision import pod_template_hash

TEMPLATE = {"metadata": {"labels": {"app": "podinfo"}},
            "spec": {"containers": [{"name": "podinfod", "image": "ghcr.io/stefanprodan/podinfo:6.0.1"}]}}
DEPLOY = {"metadata": {"name": "podinfo"}, "spec": {"template": TEMPLATE}}
REV = pod_template_hash(TEMPLATE)
OLD = "cd1:aaaaaaaaaaaaaaaa"


@pytest.mark.parametrize(("wanted", "revision"), [
    (None, REV),
    ("", REV),
    ("ghcr.io/stefanprodan/podinfo:6.0.1", REV),
    (":6.0.1", REV),
    ("cd1:0123456789abcdef", "cd1:0123456789abcdef"),
    ("0123456789abcdef", "cd1:0123456789abcdef"),
])
def test_revision_of(wanted: str | None, revision: str) -> None:
    assert revision_of(DEPLOY, wanted) == revision


@pytest.mark.parametrize("wanted", ["ghcr.io/stefanprodan/podinfo:6.0.2", "6.0.1", ":6.0"])
def test_an_image_the_target_does_not_run_is_refused_saying_what_it_runs(wanted: str) -> None:
    with pytest.raises(RevisionError, match=r"podinfo:6\.0\.1"):
        revision_of(DEPLOY, wanted)


def canary(phase: str, applied: str, promoted: str = OLD, **extra: Any) -> dict[str, Any]:
    return {"metadata": {"generation": 1},
            "status": {"phase": phase, "lastAppliedSpec": applied, "lastPromotedSpec": promoted,
                       "observedGeneration": 1, **extra}}


@pytest.mark.parametrize(("obj", "seen", "code", "reason"), [
    (canary("Succeeded", OLD), False, PENDING, "waiting for canaryd to start revision"),
    (canary("Progressing", REV, canaryWeight=20), False, PENDING, "Progressing weight 20%"),
    (canary("Succeeded", REV, REV), True, PROMOTED, "promoted"),
    (canary("Initialized", REV, REV), False, PROMOTED, "promoted"),
    (canary("Initialized", REV, OLD), False, PENDING, "Initialized"),
    (canary("Failed", REV, message="Rolling back podinfo.test failed checks threshold reached 5"), True,
     FAILED, "rolled back: Rolling back podinfo.test failed checks threshold reached 5"),
    (canary("Failed", REV, checks=[{"name": "request-success-rate", "verdict": "fail", "value": 43.2,
                                     "threshold": ">= 99%"}]), True,
     FAILED, "rolled back: request-success-rate 43.20% (>= 99%: FAIL)"),
    (canary("Progressing", "cd1:bbbbbbbbbbbbbbbb"), True, FAILED, "superseded"),
    ({"metadata": {"generation": 2}, "status": {"phase": "Succeeded", "lastAppliedSpec": REV,
                                                 "observedGeneration": 1}}, True, PENDING, "not seen"),
])
def test_judge(obj: dict[str, Any], seen: bool, code: int | None, reason: str) -> None:
    verdict = judge(obj, REV, seen)
    assert verdict.code == code and reason in verdict.reason, verdict
