"""Generated Services and mirroring end to end (issue 11: unit-only or untested before):

* ``service.headless``: the three generated Services are headless (``clusterIP: None``)
* ``mirrorWeight``: the mirrored step's VirtualService route mirrors to the canary with
  ``mirrorPercentage`` equal to it, then the canary advances by weight
* Blue/Green with ``mirror: true``: during the iterations the route keeps 100/0 and mirrors to the canary
  (the simulator's mirrored copies reach the canary workload), then all traffic goes to the canary and
  the release is promoted

The mesh simulator sends background traffic to every apex host and copies mirrored requests as Envoy does
(e2e/mesh); its Istio metrics count what reached each workload."""

from __future__ import annotations

import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from canaryd.kube.client import KubeClient
from canaryd.kube.resources import SERVICE
from e2e.bed.waiting import wait_for
from e2e.canaries import IMAGE, canary, create, event_messages, podinfo, set_image, status, wait_phase
from e2e.flagger_suite import primary_image, vs_spec
from e2e.operator import Operator

RUN = 90.0


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client()
    yield client
    await client.close()


def first_route(spec: dict[str, Any]) -> tuple[tuple[int, int], dict[str, Any] | None, dict[str, Any] | None]:
    """((primary, canary) weights, mirror, mirrorPercentage) of the VirtualService's route."""
    route = spec["http"][0]
    weights = {d["destination"]["host"]: int(d["weight"]) for d in route["route"]}
    return (weights["podinfo-primary"], weights["podinfo-canary"]), route.get("mirror"), \
        route.get("mirrorPercentage")


def workload_requests(mesh_url: str, namespace: str, workload: str) -> float:
    """``istio_requests_total{reporter="destination"}`` of one workload, every source (background and
    mirrored copies included)."""
    with urllib.request.urlopen(f"{mesh_url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("istio_requests_total{") and 'reporter="destination"' in line
               and f'destination_workload="{workload}"' in line
               and f'destination_workload_namespace="{namespace}"' in line)


async def test_headless_services(
        namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient) -> None:
    operator_factory(namespace)
    spec = canary(namespace, metrics=[])
    spec["spec"]["service"]["headless"] = True
    await create(admin, namespace, podinfo(namespace), spec)
    await wait_phase(admin, namespace, "Initialized")
    for name in ("podinfo", "podinfo-primary", "podinfo-canary"):
        svc = await admin.get(SERVICE, namespace, name)
        assert svc["spec"]["clusterIP"] == "None", (name, svc["spec"])
        assert svc["spec"].get("clusterIPs") == ["None"], (name, svc["spec"])


async def test_mirror_weight_is_the_mirror_percentage(
        namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient) -> None:
    operator_factory(namespace)
    spec = canary(namespace, interval="2s", metrics=[], stepWeight=25, maxWeight=50, mirror=True,
                  mirrorWeight=30)
    await create(admin, namespace, podinfo(namespace), spec)
    await wait_phase(admin, namespace, "Initialized")
    assert first_route(await vs_spec(admin, namespace)) == ((100, 0), None, None)

    seen: list[tuple[tuple[int, int], Any, Any]] = []

    async def ended() -> bool:
        got = first_route(await vs_spec(admin, namespace))
        if not seen or seen[-1] != got:
            seen.append(got)
        return (await status(admin, namespace)).get("phase") in ("Succeeded", "Failed")

    await set_image(admin, namespace, "6.0.1")
    await wait_for(ended, RUN, "the run to end", interval=0.05)
    assert (await status(admin, namespace))["phase"] == "Succeeded"
    # the first step mirrors (30 % of requests copied), the next ones split by weight without a mirror
    assert seen == [((100, 0), None, None),
                    ((100, 0), {"host": "podinfo-canary"}, {"value": 30}),
                    ((75, 25), None, None), ((50, 50), None, None), ((100, 0), None, None)], seen
    assert await primary_image(admin, namespace) == f"{IMAGE}:6.0.1"


async def test_blue_green_with_mirroring_mirrors_during_analysis_then_promotes(
        bed: Any, namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient) -> None:
    operator_factory(namespace)
    spec = canary(namespace, interval="2s", metrics=[], iterations=4, mirror=True)
    del spec["spec"]["analysis"]["stepWeight"], spec["spec"]["analysis"]["maxWeight"]
    await create(admin, namespace, podinfo(namespace), spec)
    await wait_phase(admin, namespace, "Initialized")
    await set_image(admin, namespace, "6.0.1")

    async def mirroring() -> bool:
        return first_route(await vs_spec(admin, namespace)) == ((100, 0), {"host": "podinfo-canary"}, None)

    await wait_for(mirroring, RUN, "the route mirrored to the canary", interval=0.05)
    before = workload_requests(str(bed.mesh_url), namespace, "podinfo")

    async def copies_reach_the_canary() -> bool:
        st = await status(admin, namespace)
        assert st.get("phase") == "Progressing" and int(st.get("canaryWeight") or 0) == 0, st
        assert await mirroring(), await vs_spec(admin, namespace)
        return workload_requests(str(bed.mesh_url), namespace, "podinfo") > before

    # the canary has weight 0 all along: whatever reaches its workload now is a mirrored copy
    await wait_for(copies_reach_the_canary, 20, "mirrored requests counted on the canary workload")

    seen: list[tuple[tuple[int, int], Any, Any]] = []

    async def ended() -> bool:
        got = first_route(await vs_spec(admin, namespace))
        if not seen or seen[-1] != got:
            seen.append(got)
        return (await status(admin, namespace)).get("phase") in ("Succeeded", "Failed")

    await wait_for(ended, RUN, "the run to end", interval=0.05)
    assert (await status(admin, namespace))["phase"] == "Succeeded"
    # mirrored, then switched (never split), then back to the promoted primary
    assert [w for w, _, _ in seen] in ([(100, 0), (0, 100), (100, 0)], [(0, 100), (100, 0)]), seen
    assert all(m is None for w, m, _ in seen if w != (100, 0)) and seen[-1] == ((100, 0), None, None), seen
    events = await event_messages(admin, namespace)
    iterations = [e for e in events if e.startswith(f"Advance podinfo.{namespace} canary iteration")]
    assert iterations == [f"Advance podinfo.{namespace} canary iteration {i}/4" for i in range(1, 5)]
    assert "Stop traffic mirroring and route all traffic to canary" in events
    assert "Routing all traffic to canary" not in events
    assert await primary_image(admin, namespace) == f"{IMAGE}:6.0.1"
