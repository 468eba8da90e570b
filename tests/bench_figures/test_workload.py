"""The benchmark's Deployment (bench/workload.py): slow rollouts on demand mark the pod template, which both
operators copy to the primary, so the canary's scale-up and the primary's rollout are both slow."""

from __future__ import annotations

from bench import workload
from e2e.bed import READY_AFTER


def test_ready_after_marks_the_pod_template_with_the_beds_delay() -> None:
    slow = workload.deployment("ns", "app-0000", ready_after=25)
    assert slow["spec"]["template"]["metadata"]["annotations"] == {READY_AFTER: "25s"}
    assert slow["spec"]["template"]["metadata"]["labels"] == {"app": "app-0000"}


def test_without_ready_after_the_template_carries_no_annotation() -> None:
    assert "annotations" not in workload.deployment("ns", "app-0000")["spec"]["template"]["metadata"]
