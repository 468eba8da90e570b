"""Steps the box's scenarios share: the tutorial's objects in namespace ``test`` up to Initialized, and
waiting for the end of a run."""

from __future__ import annotations

from typing import Any

from canaryd.kube import resources as r

from .harness import Box, eventually
from .objects import IMAGE, STEPS, hpa, podinfo, tutorial_canary

NS = "test"
KEY = f"podinfo.{NS}"


async def initialized(box: Box, *, deployment: dict[str, Any] | None = None, **canary: Any) -> None:
    """podinfo, its HPA and the tutorial's Canary; returns once the Canary is Initialized."""
    box.api.put(r.DEPLOYMENT, deployment or podinfo(NS))
    box.api.put(r.HPA, hpa(NS))
    box.api.put(r.CANARY, tutorial_canary(NS, box.hooks.url, **canary))
    await eventually(lambda: box.phase(NS) == "Initialized", 10, "Initialized")


async def final_phase(box: Box, within: float = 30) -> str:
    await eventually(lambda: box.phase(NS) in ("Succeeded", "Failed"), within, "a final phase")
    return box.phase(NS)


async def succeeded(box: Box, within: float = 30, image: str = f"{IMAGE}:6.0.1") -> None:
    """The run ended Succeeded, through every weight in order, with ``image`` promoted."""
    assert await final_phase(box, within) == "Succeeded", box.status(NS)
    assert box.weights(NS) == [0, *STEPS, 0]
    assert box.primary_image(NS) == image


def weight_at_least(box: Box, weight: int) -> bool:
    return box.phase(NS) == "Progressing" and int(box.status(NS).get("canaryWeight") or 0) >= weight
