"""The tutorial in the box: the real runtime promotes a new image with weights 5 → 50 in order and
Flagger's Event sequence, in seconds of real time."""

from __future__ import annotations

from canaryd.kube import resources as r

from .harness import Box, eventually, is_subsequence
from .objects import IMAGE, STEPS, expected_events
from .scenario import NS, initialized


async def test_the_tutorial_promotes_a_new_image(box: Box) -> None:
    await box.run()
    await initialized(box)
    assert box.weights(NS) == [0]
    target = box.api.get(r.DEPLOYMENT, NS, "podinfo")
    assert target is not None and target["spec"]["replicas"] == 0

    box.set_image(NS, "6.0.1")
    await eventually(lambda: box.phase(NS) in ("Succeeded", "Failed"), 30, "a final phase")
    assert box.phase(NS) == "Succeeded", box.status(NS)
    assert box.weights(NS) == [0, *STEPS, 0]
    assert box.primary_image(NS) == f"{IMAGE}:6.0.1"

    def scaled_down() -> bool:  # an action of the pass that wrote Succeeded: it follows the status write
        return bool((box.api.get(r.DEPLOYMENT, NS, "podinfo") or {})["spec"]["replicas"] == 0)

    await eventually(scaled_down, 5, "the target scaled down")

    def seen() -> list[str]:  # the last Event follows the status write that ended the run
        return [m for m in box.messages(NS) if " not ready: " not in m]

    await eventually(lambda: len(seen()) >= len(expected_events(NS)), 5, "every Event")
    assert seen() == expected_events(NS), seen()
    body = box.hooks.bodies("/load")[0]
    assert body["name"] == "podinfo" and body["namespace"] == NS and body["phase"] == "Progressing"
    assert is_subsequence(["Initialized", "Progressing", "Promoting", "Finalising", "Succeeded"],
                          box.phases_seen(NS))
