"""A route write that keeps failing past the next step's due time: the step's weight still reaches the
VirtualService before that step is judged (the engine repairs routes first), so no step is measured at
another step's traffic."""

from __future__ import annotations

from canaryd.model.fields import parse_time

from .harness import Box, eventually
from .scenario import NS, initialized, succeeded, weight_at_least


async def test_a_route_write_failing_past_a_step_deadline_still_gets_that_weight(box: Box) -> None:
    await box.run()
    await initialized(box)
    box.set_image(NS, "6.0.1")
    await eventually(lambda: weight_at_least(box, 15) and box.weights(NS)[-1] == 15, 20,
                     "weight 15 in status and on the VirtualService")
    # every VirtualService patch fails from now on, until lifted below: the step to 20 writes its
    # status, then cannot move traffic
    box.api.fail("PATCH", r"/virtualservices/podinfo$", 500, "InternalError", count=10_000)
    await eventually(lambda: weight_at_least(box, 20), 20, "status at weight 20")
    due = parse_time(box.status(NS).get("nextStepAt"))
    assert due is not None
    await eventually(lambda: box.clock.now() > due + 10, 20, "past the next step's due time")
    assert box.weights(NS)[-1] == 15  # the failure lasted: traffic still at 15 %
    box.api.faults.clear()
    await succeeded(box)  # every weight in order: 15 -> 20 -> 25, never 15 -> 25
    assert box.api.count("PATCH", "/virtualservices/podinfo", 500) >= 3
