"""Bad input and failure in the box: a conflict on the status write, invalid Canaries beside a valid one,
an API error mid-pass."""

from __future__ import annotations

import functools
from typing import Any

from canaryd.kube import resources as r

from .harness import Box, eventually
from .objects import tutorial_canary
from .scenario import NS, initialized, succeeded, weight_at_least


async def test_a_conflict_on_the_status_write_is_decided_again(box: Box) -> None:
    await box.run()
    await initialized(box)
    box.set_image(NS, "6.0.1")
    await eventually(lambda: weight_at_least(box, 10), 20, "weight 10")
    box.api.fail("PUT", r"/canaries/podinfo/status$", 409, "Conflict")
    await succeeded(box)
    assert box.api.count("PUT", "/canaries/podinfo/status", 409) == 1


async def test_invalid_canaries_beside_a_valid_one(box: Box) -> None:
    await box.run()
    missing = tutorial_canary(NS, box.hooks.url, name="backend", target="backend", autoscaler=False)
    no_port = tutorial_canary(NS, box.hooks.url, name="noport", target="backend", autoscaler=False)
    del no_port["spec"]["service"]["port"]
    box.api.put(r.CANARY, missing)
    box.api.put(r.CANARY, no_port)
    await initialized(box)
    for name, says in (("backend", "target Deployment backend.test not found"), ("noport", "port")):
        await eventually(functools.partial(_conditions, box, name), 5, f"{name}'s condition")
        valid = [c for c in box.status(NS, name)["conditions"] if c.get("type") == "Valid"]
        assert valid and valid[0]["status"] == "False" and says in valid[0]["message"], valid
        assert box.status(NS, name)["message"] == valid[0]["message"]
        await eventually(functools.partial(box.event_counts, NS, name), 5, f"{name}'s Event")  # after status
        assert box.event_counts(NS, name) == {valid[0]["message"]: 1}, box.event_counts(NS, name)
    box.set_image(NS, "6.0.1")
    await succeeded(box)
    for name in ("backend", "noport"):  # reported once, not at every pass; nothing made for them
        assert len(box.event_counts(NS, name)) == 1 and box.phase(NS, name) in ("", "Failed")
    assert box.api.get(r.DEPLOYMENT, NS, "backend-primary") is None


async def test_an_api_error_mid_pass_is_retried(box: Box) -> None:
    await box.run()
    await initialized(box)
    box.set_image(NS, "6.0.1")
    await eventually(lambda: weight_at_least(box, 15), 20, "weight 15")
    box.api.fail("PATCH", r"/virtualservices/podinfo$", 500, "InternalError", count=3)  # the client's 3 tries
    await succeeded(box)
    assert box.api.count("PATCH", "/virtualservices/podinfo", 500) == 3
    assert any("500" in m for m in box.messages(NS)), box.messages(NS)  # a Warning Event says why


def _conditions(box: Box, name: str) -> Any:
    return box.status(NS, name).get("conditions")
