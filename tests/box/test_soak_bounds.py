"""Bounds the soak benchmark (bench/soak.py) watches, in the box: a deleted Canary's Event aggregation
entries and its task go with it, as read through canaryd's own metrics."""

from __future__ import annotations

from canaryd.kube import resources as r

from .harness import Box, eventually
from .scenario import NS, initialized, weight_at_least


async def test_a_deleted_canary_leaves_no_aggregation_entries(box: Box) -> None:
    inst = await box.run()
    await initialized(box)
    box.set_image(NS, "6.0.1")
    await eventually(lambda: weight_at_least(box, 10), 20, "weight 10")

    def value(name: str) -> float | None:
        return inst.metrics.registry.get_sample_value(name)

    assert (value("canaryd_event_aggregation_entries") or 0) > 0  # its Events so far are remembered
    box.api.remove(r.CANARY, NS, "podinfo")
    await eventually(lambda: value("canaryd_canary_tasks") == 0, 5, "the canary's task gone")
    await eventually(lambda: value("canaryd_event_aggregation_entries") == 0, 5, "its entries gone")
