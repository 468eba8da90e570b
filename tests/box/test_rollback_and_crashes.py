"""A rollback on failing metrics, and every crash point followed by a restart: a new runtime on the same
API server continues from the Canary's status alone, without repeating or skipping a step."""

from __future__ import annotations

import pytest

from .harness import Box, eventually
from .objects import IMAGE, STEPS
from .peers import failing_success_rate
from .scenario import KEY, NS, final_phase, initialized


async def test_failing_metrics_roll_back_after_threshold_failed_checks(box: Box) -> None:
    box.prometheus.answer = failing_success_rate
    await box.run()
    await initialized(box, threshold=3)
    box.set_image(NS, "6.0.1")
    assert await final_phase(box) == "Failed", box.status(NS)
    rolled_back = f"Rolling back {KEY} failed checks threshold reached 3"
    await eventually(lambda: f"Canary failed! Scaling down {KEY}" in box.messages(NS), 5, "the last Event")
    halt = f"Halt {KEY} advancement success rate 50.00% < 99%"
    assert box.event_counts(NS)[halt] == 3, box.event_counts(NS)  # one Event, counted three times
    messages = box.messages(NS)
    assert messages.index(rolled_back) > messages.index(halt)
    assert box.weights(NS) == [0, 5, 0]  # the first step, no further, then all traffic back
    assert box.primary_image(NS) == f"{IMAGE}:6.0.0"


@pytest.mark.parametrize("point,nth", [("after-status-write", 4), ("after-route-write", 3)])
async def test_a_crash_point_then_a_restart_continues_the_run(box: Box, point: str, nth: int) -> None:
    first = await box.run(crash_at={point: nth})
    await initialized(box)
    box.set_image(NS, "6.0.1")
    await eventually(first.crash.crashed.wait, 30, f"crash point {point}")
    await first.stop()
    assert box.phase(NS) == "Progressing", box.status(NS)
    crashed_weight = int(box.status(NS).get("canaryWeight") or 0)

    await box.run()  # the restarted process
    assert await final_phase(box) == "Succeeded", box.status(NS)
    assert box.weights(NS) == [0, *STEPS, 0]  # no step repeated or skipped across the restart
    assert box.primary_image(NS) == f"{IMAGE}:6.0.1"
    await eventually(lambda: f"Promotion completed! Scaling down {KEY}" in box.messages(NS), 5, "last Event")
    messages = box.messages(NS)
    advances = {w: messages.count(f"Advance {KEY} canary weight {w}") for w in STEPS}
    assert all(n <= 1 for n in advances.values()), advances
    # the crashed process may lose the Events of the step it crashed in (status is written first)
    assert sum(advances.values()) >= len(STEPS) - 1, (crashed_weight, advances)
    assert not [m for m in messages if m.startswith(("Rolling back", "New revision detected! Restarting"))]
