"""``revertOnDeletion`` and the takeover of a pre-existing Service and VirtualService, end to end on the
bed, with canaryd under its own ServiceAccount (flagger-reference.md §3.9, §4.4; Flagger's Istio suite
steps 7 and 8 of test-canary.sh):

* a canary with ``revertOnDeletion`` promoted once, then deleted: the target is scaled back to the
  primary's replicas, the generated ``-primary`` objects are collected, the apex Service selects the
  target's pods (and serves its version through the mesh), the Canary is gone (finalizer removed);
* a Service ``podinfo`` and a VirtualService ``podinfo`` with user fields created before the Canary: taken
  over without an ownerReference (original spec kept in an annotation), a run moves traffic, and deleting
  the Canary leaves both in place — restored to their original spec exactly with ``revertOnDeletion``;
* canaryd killed twice while the Canary is being deleted (hard exits at crash points: after the
  ``Terminating`` status write, and after routing was given back) still completes the finalization.

Substitutions the bed forces: the VirtualService's gateway is not a real ingress gateway (the mesh
simulator ignores gateways), its host is made unique per namespace (tests share the simulator), and
readiness comes from kwok's stages instead of podinfo's probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from canaryd.kube.client import KubeClient
from canaryd.kube.errors import NotFound
from canaryd.kube.resources import CANARY, DEPLOYMENT, DESTINATION_RULE, SERVICE, VIRTUAL_SERVICE, Resource
from e2e.bed.waiting import wait_for
from e2e.canaries import canary, create, event_messages, podinfo, set_image, status, wait_phase
from e2e.operator import Operator, wait_ready
from e2e.tutorial import canary_events, canary_traffic, counts, forbidden

FINALIZER = "finalizer.flagger.app"
ORIGINAL = "flagger.kubernetes.io/original-configuration"


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client()
    yield client
    await client.close()


def reverting(namespace: str, revert: bool = True) -> dict[str, Any]:
    c = canary(namespace)
    c["spec"]["revertOnDeletion"] = revert
    return c


async def get(client: KubeClient, res: Resource, ns: str, name: str) -> dict[str, Any] | None:
    try:
        return await client.get(res, ns, name)
    except NotFound:
        return None


async def gone(client: KubeClient, res: Resource, ns: str, name: str) -> bool:
    return await get(client, res, ns, name) is None


async def wait_gone(client: KubeClient, ns: str, *objects: tuple[Resource, str], seconds: float = 90) -> None:
    for res, name in objects:
        await wait_for(lambda res=res, name=name: gone(client, res, ns, name), seconds,
                       f"{res.kind} {ns}/{name} gone")


async def finalizers(client: KubeClient, ns: str) -> list[str]:
    obj = await get(client, CANARY, ns, "podinfo")
    return list((obj or {}).get("metadata", {}).get("finalizers") or [])


async def run_once(client: KubeClient, ns: str) -> None:
    """A new revision promoted: traffic moves to the canary and back, phase Succeeded."""
    await set_image(client, ns, "6.0.1")

    async def shifted() -> bool:
        vs = await get(client, VIRTUAL_SERVICE, ns, "podinfo")
        routes = (vs or {}).get("spec", {}).get("http") or [{}]
        return any(d["destination"]["host"] == "podinfo-canary" and int(d.get("weight", 0)) > 0
                   for d in routes[0].get("route") or [])

    await wait_for(shifted, 90, "traffic on the canary")
    await wait_phase(client, ns, "Succeeded", seconds=120)
    await wait_for(lambda: replicas_are(client, ns, 0), 30, "the target scaled down after the promotion")


async def replicas_are(client: KubeClient, ns: str, n: int, name: str = "podinfo") -> bool:
    """(status is written before the actions it implies, so the scale follows the phase)"""
    return int((await client.get(DEPLOYMENT, ns, name))["spec"].get("replicas", 1)) == n


async def taken_over(client: KubeClient, ns: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The apex Service and the VirtualService once both carry the takeover record."""
    svc = await get(client, SERVICE, ns, "podinfo")
    vs = await get(client, VIRTUAL_SERVICE, ns, "podinfo")
    if svc is None or vs is None:
        return None
    if all(ORIGINAL in (o["metadata"].get("annotations") or {}) for o in (svc, vs)):
        return svc, vs
    return None


async def served_version(mesh_url: str, ns: str) -> str | None:
    """The version podinfo answers through the mesh at its apex address (None while it cannot)."""
    async with aiohttp.ClientSession() as s, s.get(
            f"{mesh_url}/api/info", headers={"Host": f"podinfo.{ns}:9898"},
            timeout=aiohttp.ClientTimeout(total=5)) as resp:
        if resp.status != 200:
            return None
        return str((await resp.json(content_type=None)).get("version"))


@contextlib.asynccontextmanager
async def requests_to_apex(mesh_url: str, ns: str, rps: float = 20.0) -> AsyncIterator[list[int]]:
    """GET / at podinfo's apex address through the mesh while the block runs; yields the status codes
    (599 for a connection error or timeout)."""
    codes: list[int] = []

    async def loop() -> None:
        async with aiohttp.ClientSession() as s:
            while True:
                try:
                    async with s.get(f"{mesh_url}/", headers={"Host": f"podinfo.{ns}:9898"},
                                     timeout=aiohttp.ClientTimeout(total=5)) as resp:
                        codes.append(resp.status)
                except (aiohttp.ClientError, TimeoutError):
                    codes.append(599)
                await asyncio.sleep(1 / rps)

    task = asyncio.create_task(loop())
    try:
        yield codes
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_revert_on_deletion_restores_the_target(
        bed: Any, namespace: str, operator: Operator, admin: KubeClient) -> None:
    ns = namespace
    await create(admin, ns, podinfo(ns), reverting(ns))
    await wait_phase(admin, ns, "Initialized")
    assert await finalizers(admin, ns) == [FINALIZER]
    await run_once(admin, ns)
    target = await admin.get(DEPLOYMENT, ns, "podinfo")
    primary = await admin.get(DEPLOYMENT, ns, "podinfo-primary")
    assert target["spec"]["replicas"] == 0 and primary["spec"]["replicas"] == 1

    async with requests_to_apex(str(bed.mesh_url), ns) as codes:
        await wait_for(lambda: len(codes) >= 5, 10, "requests flowing")
        await admin.delete(CANARY, ns, "podinfo")
        await wait_gone(admin, ns, (CANARY, "podinfo"), (DEPLOYMENT, "podinfo-primary"),
                        (VIRTUAL_SERVICE, "podinfo"), (SERVICE, "podinfo-primary"))
        seen = len(codes)
        await wait_for(lambda: len(codes) >= seen + 10, 10, "requests after the collection")
    # no request failed while the target took the traffic back and the rest was collected
    assert set(codes) == {200}, {c: codes.count(c) for c in set(codes)}
    # the finalizer held it until the target was back and routing given back
    target = await admin.get(DEPLOYMENT, ns, "podinfo")
    assert target["spec"]["replicas"] == 1
    assert int(target.get("status", {}).get("availableReplicas") or 0) == 1
    svc = await admin.get(SERVICE, ns, "podinfo")
    assert svc["spec"]["selector"] == {"app": "podinfo"}
    assert not svc["metadata"].get("ownerReferences")  # released: it outlives the Canary
    events = await event_messages(admin, ns)
    key = f"podinfo.{ns}"
    assert events.index(f"Terminating canary {key}") < events.index(f"Terminated canary {key}")

    # the garbage collector removes what the Canary generated, nothing else
    await wait_gone(admin, ns, (DEPLOYMENT, "podinfo-primary"), (SERVICE, "podinfo-primary"),
                    (SERVICE, "podinfo-canary"), (DESTINATION_RULE, "podinfo-primary"),
                    (DESTINATION_RULE, "podinfo-canary"), (VIRTUAL_SERVICE, "podinfo"))
    assert await get(admin, SERVICE, ns, "podinfo") is not None
    assert await get(admin, DEPLOYMENT, ns, "podinfo") is not None
    # and the application answers at its address, from the target (the promoted version)
    assert await wait_for(lambda: _version_is(bed, ns, "6.0.1"), 30, "podinfo served by the target")
    assert not [m for m in operator.messages() if "finalizing failed" in m]
    assert forbidden(bed, ns) == []  # the ServiceAccount's rules cover the finalizer and the revert


async def _version_is(bed: Any, ns: str, version: str) -> bool:
    return await served_version(str(bed.mesh_url), ns) == version


def user_service(ns: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "podinfo", "namespace": ns, "labels": {"owner": "user"},
                         "annotations": {"team": "web"}},
            "spec": {"type": "ClusterIP", "selector": {"app": "podinfo"}, "sessionAffinity": "ClientIP",
                     "ports": [{"name": "http", "port": 9898, "targetPort": "http", "protocol": "TCP"}]}}


def user_virtual_service(ns: str) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
            "metadata": {"name": "podinfo", "namespace": ns, "labels": {"owner": "user"}},
            "spec": {"gateways": ["istio-system/ingressgateway"],
                     "hosts": [f"app.{ns}.example.com", "podinfo"],
                     "http": [{"retries": {"attempts": 3, "perTryTimeout": "1s"},
                               "route": [{"destination": {"host": "podinfo"}}]}]}}


@pytest.mark.parametrize("revert", [False, True], ids=["kept", "restored"])
async def test_takeover_of_existing_service_and_virtual_service(
        namespace: str, operator: Operator, admin: KubeClient, revert: bool) -> None:
    ns = namespace
    await create(admin, ns, podinfo(ns), user_service(ns))
    await admin.create(VIRTUAL_SERVICE, ns, user_virtual_service(ns))
    svc0 = await admin.get(SERVICE, ns, "podinfo")
    vs0 = await admin.get(VIRTUAL_SERVICE, ns, "podinfo")
    await create(admin, ns, reverting(ns, revert))
    await wait_phase(admin, ns, "Initialized")
    assert await finalizers(admin, ns) == ([FINALIZER] if revert else [])

    # taken over: no ownerReference, the original spec recorded, routing and selector now canaryd's
    svc, vs = await wait_for(lambda: taken_over(admin, ns), 30, "Service and VirtualService taken over")
    for obj in (svc, vs):
        assert not obj["metadata"].get("ownerReferences")
        assert obj["metadata"]["labels"]["owner"] == "user"
    assert json.loads(svc["metadata"]["annotations"][ORIGINAL]) == svc0["spec"]
    assert json.loads(vs["metadata"]["annotations"][ORIGINAL]) == vs0["spec"]
    assert svc["spec"]["selector"] == {"app": "podinfo-primary"}
    assert svc["spec"]["clusterIP"] == svc0["spec"]["clusterIP"]
    assert [d["destination"]["host"] for d in vs["spec"]["http"][0]["route"]] == ["podinfo-primary",
                                                                                  "podinfo-canary"]
    await run_once(admin, ns)

    await admin.delete(CANARY, ns, "podinfo")
    await wait_gone(admin, ns, (CANARY, "podinfo"))
    await wait_gone(admin, ns, (DEPLOYMENT, "podinfo-primary"), (SERVICE, "podinfo-canary"))  # GC ran
    svc = await get(admin, SERVICE, ns, "podinfo")
    vs = await get(admin, VIRTUAL_SERVICE, ns, "podinfo")
    assert svc is not None and vs is not None  # Flagger's step 8: both still exist
    assert svc["metadata"]["uid"] == svc0["metadata"]["uid"]
    assert vs["metadata"]["uid"] == vs0["metadata"]["uid"]
    if not revert:
        assert svc["spec"]["selector"] == {"app": "podinfo-primary"}  # as Flagger leaves them
        return
    assert svc["spec"] == svc0["spec"]
    assert vs["spec"] == vs0["spec"]
    for obj in (svc, vs):
        assert ORIGINAL not in (obj["metadata"].get("annotations") or {})
        assert obj["metadata"]["labels"]["owner"] == "user"
    assert svc["metadata"]["annotations"] == svc0["metadata"]["annotations"]
    assert (await admin.get(DEPLOYMENT, ns, "podinfo"))["spec"]["replicas"] == 1


async def _crashed(op: Operator, point: str) -> None:
    """Wait for the process to exit at its crash point (code 137, as after SIGKILL)."""
    assert op.proc is not None
    await wait_for(lambda: _exited(op), 60, f"canaryd exits at {point}")
    assert op.proc.returncode == 137
    assert f"crash point {point} reached: exiting" in op.messages()[-5:], op.messages()[-10:]


async def _exited(op: Operator) -> bool:
    return not op.running()


async def test_restart_during_finalization_completes_it(
        bed: Any, namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient) -> None:
    ns = namespace
    op = operator_factory(ns)
    await create(admin, ns, podinfo(ns), reverting(ns))
    await wait_phase(admin, ns, "Initialized")
    assert await finalizers(admin, ns) == [FINALIZER]
    await wait_for(lambda: replicas_are(admin, ns, 0), 30, "the target scaled down at initialization")
    assert op.stop() == 0
    op.start(CANARYD_CRASH_AT="after-status-write")  # a Canary at rest writes nothing until it is deleted
    wait_ready(op)

    await admin.delete(CANARY, ns, "podinfo")
    await _crashed(op, "after-status-write")
    assert (await status(admin, ns))["phase"] == "Terminating"
    assert await finalizers(admin, ns) == [FINALIZER]
    assert (await admin.get(DEPLOYMENT, ns, "podinfo"))["spec"]["replicas"] == 0  # killed before scaling

    op.start(CANARYD_CRASH_AT="after-revert-routing")
    await _crashed(op, "after-revert-routing")
    assert await finalizers(admin, ns) == [FINALIZER]  # killed before the finalizer went
    assert (await admin.get(DEPLOYMENT, ns, "podinfo"))["spec"]["replicas"] == 1
    svc = await admin.get(SERVICE, ns, "podinfo")
    assert svc["spec"]["selector"] == {"app": "podinfo"} and not svc["metadata"].get("ownerReferences")

    op.start()
    await wait_gone(admin, ns, (CANARY, "podinfo"))
    await wait_gone(admin, ns, (DEPLOYMENT, "podinfo-primary"), (VIRTUAL_SERVICE, "podinfo"))
    assert (await admin.get(SERVICE, ns, "podinfo"))["spec"]["selector"] == {"app": "podinfo"}
    assert f"Terminated canary podinfo.{ns}" in await event_messages(admin, ns)
    assert forbidden(bed, ns) == []


async def test_opting_out_removes_the_finalizer(
        namespace: str, operator: Operator, admin: KubeClient) -> None:
    """``revertOnDeletion`` turned off: the finalizer goes at once, and a deletion then reverts nothing
    (Flagger's behaviour: the target stays at 0 replicas, #686)."""
    ns = namespace
    await create(admin, ns, podinfo(ns), reverting(ns))
    await wait_phase(admin, ns, "Initialized")
    assert await finalizers(admin, ns) == [FINALIZER]
    await admin.patch(CANARY, ns, "podinfo", {"spec": {"revertOnDeletion": False}})
    await wait_for(lambda: _no_finalizer(admin, ns), 30, "the finalizer removed")
    await wait_for(lambda: replicas_are(admin, ns, 0), 30, "the target scaled down at initialization")
    await admin.delete(CANARY, ns, "podinfo")
    await wait_gone(admin, ns, (CANARY, "podinfo"), (SERVICE, "podinfo"), (DEPLOYMENT, "podinfo-primary"))
    assert (await admin.get(DEPLOYMENT, ns, "podinfo"))["spec"]["replicas"] == 0
    assert f"Terminating canary podinfo.{ns}" not in await event_messages(admin, ns)
    assert any("opting out, deleting finalizers" in m for m in operator.messages())


async def _no_finalizer(client: KubeClient, ns: str) -> bool:
    return await finalizers(client, ns) == []


async def test_target_never_ready_does_not_block_the_deletion(
        namespace: str, operator: Operator, admin: KubeClient) -> None:
    """A failed run whose target never becomes ready, then the Canary deleted: the revert waits for the
    target at most ``progressDeadlineSeconds``, then gives the routing back anyway (Warning Event) and the
    Canary goes."""
    ns = namespace
    spec = canary(ns, deadline=10)
    spec["spec"]["revertOnDeletion"] = True
    await create(admin, ns, podinfo(ns), spec)
    await wait_phase(admin, ns, "Initialized")
    await set_image(admin, ns, "6.0.1", never_ready=True)
    await wait_phase(admin, ns, "Failed", seconds=60)
    await wait_for(lambda: replicas_are(admin, ns, 0), 30, "the failed canary scaled down")

    await admin.delete(CANARY, ns, "podinfo")
    await wait_phase(admin, ns, "Terminating", seconds=30)

    async def waiting_for_target() -> bool:  # (the phase is written first, the wait's reason next pass)
        st = await status(admin, ns)
        return str(st.get("message", "")).startswith(
            "canary not ready during finalizing: waiting for rollout to finish")

    await wait_for(waiting_for_target, 10, "the finalization waiting for the target")
    await wait_gone(admin, ns, (CANARY, "podinfo"), seconds=60)
    events = await event_messages(admin, ns)
    warning = (f"Target podinfo.{ns} not ready within 10s while finalizing podinfo.{ns} (waiting for rollout "
               "to finish: 0 of 1 (readyThreshold 100%) updated replicas are available); reverting anyway")
    assert warning in events, events
    # the order they were emitted in (the log's, line by line): a retried pass bumps an Event's count, and
    # with it its resourceVersion, so the Events' own order can put the Warning after the last Event
    said = operator.messages()
    assert said.index(warning) < said.index(f"Terminated canary podinfo.{ns}"), said
    assert (await admin.get(DEPLOYMENT, ns, "podinfo"))["spec"]["replicas"] == 1
    assert (await admin.get(SERVICE, ns, "podinfo"))["spec"]["selector"] == {"app": "podinfo"}


async def test_a_revert_that_keeps_failing_does_not_block_the_deletion(
        namespace: str, operator: Operator, admin: KubeClient) -> None:
    """The Service's takeover record holds a spec the API server refuses (a tampered annotation): every
    attempt is logged, retried with a growing backoff (runtime/backoff.py), the failure is one Warning
    Event (not one per retry: the reason never changes), and after 8 failures the finalizer is removed
    anyway with a Warning Event."""
    ns = namespace
    bogus = json.dumps({"selector": {"app": "podinfo"}, "ports": [{"name": "http", "port": 99999}]})
    svc = user_service(ns)
    svc["metadata"]["annotations"][ORIGINAL] = bogus  # kept by the takeover: a record exists already
    await create(admin, ns, podinfo(ns), svc, reverting(ns))
    await wait_phase(admin, ns, "Initialized")
    await wait_for(lambda: _selects(admin, ns, "podinfo-primary"), 30, "the Service taken over")

    await admin.delete(CANARY, ns, "podinfo")
    await wait_gone(admin, ns, (CANARY, "podinfo"), seconds=240)
    lines = [x for x in operator.logs() if str(x.get("msg", "")).startswith("finalizing failed (attempt ")]
    assert len(lines) == 8, [x.get("msg") for x in lines]
    times = [_epoch(str(x["ts"])) for x in lines]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= 0.9 * min(30.0, 2.0 ** i) for i, gap in enumerate(gaps)), gaps  # 1, 2, 4 … 30 s
    events = counts(await canary_events(admin, ns))
    refused = [m for m in events if m.startswith(f"Service podinfo.{ns} revert error: 422")]
    assert len(refused) == 1 and events[refused[0]] == 1, events
    give_up = next(m for m in events if m.startswith(f"Reverting podinfo.{ns} failed 8 times ("))
    assert give_up.endswith(f"removing finalizer {FINALIZER} without completing the revert")
    assert f"Terminated canary podinfo.{ns}" in events
    assert (await admin.get(SERVICE, ns, "podinfo"))["metadata"]["annotations"][ORIGINAL] == bogus


async def _selects(client: KubeClient, ns: str, value: str) -> bool:
    svc = await get(client, SERVICE, ns, "podinfo")
    return (svc or {}).get("spec", {}).get("selector") == {"app": value}


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


async def test_deleted_mid_run_gives_traffic_to_the_target(
        bed: Any, namespace: str, operator: Operator, admin: KubeClient) -> None:
    """Deleted while Progressing (traffic split, the new revision on the target): the finalization does not
    wait for the run; the target keeps serving (now all of the traffic) and the rest is collected (#1588)."""
    ns = namespace
    spec = canary(ns, stepWeight=5, maxWeight=50, interval="2s")
    spec["spec"]["revertOnDeletion"] = True
    await create(admin, ns, podinfo(ns), spec)
    await wait_phase(admin, ns, "Initialized")
    # the checks need the canary's series: requests straight to the canary Service for the whole run (the
    # mesh's background traffic to the apex gives the canary ~1 request/s at 5 %, too few on a busy bed)
    async with canary_traffic(str(bed.mesh_url), ns, "/"):
        await set_image(admin, ns, "6.0.1")

        async def split() -> dict[str, Any] | None:
            st = await status(admin, ns)
            if st.get("phase") in ("Failed", "Succeeded"):
                raise AssertionError(f"the run ended before the deletion: {st}")
            return st if st.get("phase") == "Progressing" and int(st.get("canaryWeight") or 0) >= 10 else None

        await wait_for(split, 60, "the run at weight 10 or more")
        await _delete_mid_run(bed, ns, admin)
    assert await wait_for(lambda: _version_is(bed, ns, "6.0.1"), 30, "podinfo served by the target")


async def _delete_mid_run(bed: Any, ns: str, admin: KubeClient) -> None:
    """Deletes the Canary while requests go to the apex: every one answered, the target selected."""
    async with requests_to_apex(str(bed.mesh_url), ns) as codes:
        await wait_for(lambda: len(codes) >= 5, 10, "requests flowing")
        await admin.delete(CANARY, ns, "podinfo")
        await wait_gone(admin, ns, (CANARY, "podinfo"))
        assert (await admin.get(SERVICE, ns, "podinfo"))["spec"]["selector"] == {"app": "podinfo"}
        assert (await admin.get(DEPLOYMENT, ns, "podinfo"))["spec"]["replicas"] == 1
        await wait_gone(admin, ns, (DEPLOYMENT, "podinfo-primary"), (VIRTUAL_SERVICE, "podinfo"))
    assert set(codes) == {200}, {c: codes.count(c) for c in set(codes)}
