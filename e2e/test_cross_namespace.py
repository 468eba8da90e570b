"""References to another namespace with canaryd as operators run it: with Flagger's
``-no-cross-namespace-refs`` (its single-dash spelling, the way Flagger's manifests pass it), a Canary
naming a MetricTemplate or AlertProvider of another namespace is refused with Flagger's text, as
``Valid=False``, ``status.message`` and one Warning Event, while canaryd keeps running.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from canaryd.kube.client import KubeClient
from e2e.bed.waiting import wait_for
from e2e.canaries import canary, create, podinfo
from e2e.operator import Operator
from e2e.tutorial import canary_events, forbidden, wait_status

BLOCKED_TEMPLATE = "can't access metric template latency.monitoring, cross-namespace references are blocked"
BLOCKED_PROVIDER = "can't access alert provider on-call.monitoring, cross-namespace references are blocked"


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client()
    yield client
    await client.close()


async def test_cross_namespace_refs_blocked_with_flaggers_flag_and_text(
    bed: Any, namespace: str, admin: KubeClient, operator_factory: Callable[..., Operator]
) -> None:
    operator_factory(namespace, args=["-no-cross-namespace-refs"])
    ns = namespace
    template_ref: dict[str, Any] = canary(ns, metrics=[
        {"name": "latency", "templateRef": {"name": "latency", "namespace": "monitoring"},
         "thresholdRange": {"max": 500}, "interval": "10s"}])
    template_ref["metadata"]["name"] = "shared-template"
    provider_ref = canary(ns, alerts=[{"name": "on-call", "providerRef": {"name": "on-call",
                                                                         "namespace": "monitoring"}}])
    provider_ref["metadata"]["name"] = "shared-provider"
    await create(admin, ns, podinfo(ns), template_ref, provider_ref)
    for name, text in (("shared-template", BLOCKED_TEMPLATE), ("shared-provider", BLOCKED_PROVIDER)):
        st = await wait_status(admin, ns, name, "refused", lambda s, t=text: s.get("message") == t)
        valid = [c for c in st.get("conditions") or [] if c.get("type") == "Valid"]
        assert [(c["status"], c["message"]) for c in valid] == [("False", text)], st

        async def reported(name: str = name) -> list[dict[str, Any]] | None:
            """The refusal's Event (Events follow the status they report: wait for it)."""
            got = await canary_events(admin, ns, name)
            return got if got else None

        events = await wait_for(reported, 30, f"the Warning Event of {name}")
        assert [(e["type"], e["message"]) for e in events] == [("Warning", text)], events
    assert forbidden(bed, namespace) == []  # canaryd's identity was never refused meanwhile
