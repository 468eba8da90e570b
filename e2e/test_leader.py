"""Leader election end to end: two canaryd processes (each under canaryd's ServiceAccount, each with its own
user agent) share a Lease with short timings in the test's namespace. Exactly one acts — the API
server's audit log shows canary writes from one user agent at a time; a SIGKILLed leader is replaced
within the lease duration (plus the standby's retry period) and the run continues without repeating a
step; SIGTERM releases the lease, so the standby takes over without waiting for it to expire; a leader
that was frozen past its renew deadline (SIGSTOP, as a long GC pause) makes no further decision when it
wakes (at most the one request it had in flight lands late)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import pytest

from canaryd.kube.client import KubeClient
from canaryd.kube.errors import NotFound
from canaryd.kube.resources import CANARY, EVENT, LEASE
from e2e.bed.audit import AuditEvent
from e2e.bed.waiting import wait_for
from e2e.canaries import canary, create, podinfo, set_image, status, wait_phase
from e2e.operator import Operator

LEASE_NAME = "canaryd-leader"
# short timings: lease 4 s, renew deadline 3 s, retry 0.5 s
LEASE_S, RENEW_S, RETRY_S = 4.0, 3.0, 0.5


def timings(lease: float = LEASE_S, renew: float = RENEW_S, retry: float = RETRY_S) -> list[str]:
    return [f"--lease-duration={lease}s", f"--renew-deadline={renew}s", f"--retry-period={retry}s"]


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client(user_agent="e2e-leader-test")
    yield client
    await client.close()


def pair(factory: Callable[..., Operator], namespace: str, args: list[str]) -> tuple[Operator, Operator]:
    """Two replicas; ``a`` starts first, so it is the leader when both are ready."""
    common = ["--leader-elect", f"--leader-election-namespace={namespace}", *args]
    a = factory(namespace, name="a", args=[*common, "--leader-election-id=replica-a"])
    b = factory(namespace, name="b", args=[*common, "--leader-election-id=replica-b"])
    return a, b


async def holder(client: KubeClient, namespace: str) -> str:
    try:
        lease = await client.get(LEASE, namespace, LEASE_NAME)
    except NotFound:
        return ""
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


async def wait_holder(client: KubeClient, namespace: str, identity: str, seconds: float) -> float:
    """Seconds until the Lease names ``identity`` (polled every 50 ms)."""
    start = time.monotonic()

    async def held() -> bool:
        return await holder(client, namespace) == identity

    await wait_for(held, seconds, f"lease {namespace}/{LEASE_NAME} held by {identity}", interval=0.05)
    return time.monotonic() - start


def leader_gauge(op: Operator) -> float | None:
    m = re.search(r"^canaryd_leader (\S+)$", op.metrics_text(), re.M)
    return float(m.group(1)) if m else None


def canary_writes(bed: Any, namespace: str, op: Operator) -> list[AuditEvent]:
    """Writes of ``op`` in ``namespace`` other than the Lease (canary work)."""
    return [e for e in bed.audit_events(user_agent_prefix=op.user_agent)
            if e.user_agent == op.user_agent and e.namespace == namespace
            and e.verb in ("create", "update", "patch", "delete") and e.resource != "leases"]


def stamp(e: AuditEvent) -> float:
    """When the API server received the request (a request sent just before a freeze may complete after)."""
    raw = str(e.raw.get("requestReceivedTimestamp") or e.timestamp)
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()


class WeightLog:
    """Watches the Canary in the background (list, then watch: every status write arrives, in order, however
    busy the machine) and keeps each change of (phase, canaryWeight), so the test can show the weights
    were seen in order."""

    def __init__(self, client: KubeClient, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.seen: list[tuple[str, int]] = []
        self._task: asyncio.Task[None] | None = None

    def _note(self, obj: dict[str, Any]) -> None:
        if obj["metadata"]["name"] != "podinfo":
            return
        st = obj.get("status") or {}
        point = (str(st.get("phase", "")), int(st.get("canaryWeight") or 0))
        if not self.seen or self.seen[-1] != point:
            self.seen.append(point)

    async def _poll(self) -> None:
        items, rv = await self.client.list(CANARY, self.namespace)
        for obj in items:
            self._note(obj)
        while True:
            async for kind, obj in self.client.watch(CANARY, self.namespace, rv, timeout_seconds=60):
                rv = obj["metadata"]["resourceVersion"]
                if kind not in ("BOOKMARK", "DELETED"):
                    self._note(obj)

    def __enter__(self) -> WeightLog:
        self._task = asyncio.get_running_loop().create_task(self._poll())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()

    def progressing_weights(self) -> list[int]:
        return [w for phase, w in self.seen if phase == "Progressing" and w > 0]


async def advance_events(client: KubeClient, namespace: str) -> list[tuple[str, int]]:
    """(message, count) of the Canary's Events: a repeated step would show as a count above 1."""
    items, _ = await client.list(EVENT, namespace)
    items = [e for e in items if (e.get("involvedObject") or {}).get("kind") == "Canary"]
    items.sort(key=lambda e: (e.get("firstTimestamp") or "", e["metadata"].get("resourceVersion", "")))
    return [(str(e.get("message", "")), int(e.get("count") or 1)) for e in items]


def assert_one_run_in_order(log: WeightLog, events: list[tuple[str, int]], *,
                            every_event: bool = True) -> None:
    """Weights 10…50 seen in order, each step's Event at most once, one run. ``every_event=False`` after a
    SIGKILL or a freeze: a process stopped between a step's status write and its Event loses that Event
    (the status carries the run on; Events are not replayed), but no step may be repeated."""
    assert log.progressing_weights() == [10, 20, 30, 40, 50], f"weights seen: {log.seen}"
    advance = [(m, c) for m, c in events if m.startswith("Advance ")]
    expected = [f"Advance podinfo.{log.namespace} canary weight {w}" for w in (10, 20, 30, 40, 50)]
    got = [m for m, _ in advance]
    if every_event:
        assert got == expected, events
    else:
        assert got == [m for m in expected if m in got] and len(got) >= 4, events
    assert all(c == 1 for _, c in advance), f"a step was repeated: {advance}"
    starts = [(m, c) for m, c in events if m.startswith("New revision detected")]
    assert len(starts) == 1 and starts[0][1] == 1, f"the run was restarted: {events}"


async def start_run(admin: KubeClient, namespace: str, interval: str) -> None:
    await create(admin, namespace, podinfo(namespace), canary(namespace, interval=interval, threshold=10))
    await wait_phase(admin, namespace, "Initialized")
    await set_image(admin, namespace, "6.0.1")


async def test_two_replicas_exactly_one_acts(bed: Any, namespace: str, admin: KubeClient,
                                             operator_factory: Callable[..., Operator]) -> None:
    a, b = pair(operator_factory, namespace, timings())
    await wait_holder(admin, namespace, "replica-a", 10)
    assert b.ready(), "a standby with synced caches is ready"
    assert (leader_gauge(a), leader_gauge(b)) == (1.0, 0.0)
    with WeightLog(admin, namespace) as log:
        await start_run(admin, namespace, "1s")
        await wait_phase(admin, namespace, "Succeeded", seconds=60)
    assert_one_run_in_order(log, await advance_events(admin, namespace))
    writes_a, writes_b = canary_writes(bed, namespace, a), canary_writes(bed, namespace, b)
    assert writes_a, "the leader wrote nothing"
    assert writes_b == [], f"the standby wrote: {[(e.verb, e.resource, e.name) for e in writes_b]}"
    lease_writes_b = [e for e in bed.audit_events(user_agent_prefix=b.user_agent)
                      if e.user_agent == b.user_agent and e.resource == "leases" and e.verb != "get"]
    assert lease_writes_b == [], "the standby wrote the lease while it was held"
    assert not any("became leader" in m for m in b.messages())


async def test_killed_leader_is_replaced_within_the_lease_duration_and_the_run_continues(
        bed: Any, namespace: str, admin: KubeClient, operator_factory: Callable[..., Operator]) -> None:
    a, b = pair(operator_factory, namespace, timings())
    await wait_holder(admin, namespace, "replica-a", 10)
    with WeightLog(admin, namespace) as log:
        await start_run(admin, namespace, "2s")

        async def mid_run() -> bool:
            st = await status(admin, namespace)
            return st.get("phase") == "Progressing" and int(st.get("canaryWeight") or 0) >= 20

        await wait_for(mid_run, 60, "the run at weight 20", interval=0.05)
        a.kill()
        killed = time.time()
        took = await wait_holder(admin, namespace, "replica-b", LEASE_S + 4 * RETRY_S + 2)
        await wait_phase(admin, namespace, "Succeeded", seconds=60)
    print(f"\nSIGKILL → replica-b holds the lease after {took:.2f}s (lease {LEASE_S:g}s, retry {RETRY_S:g}s)")
    assert took <= LEASE_S + 2 * RETRY_S + 0.5, f"takeover took {took:.2f}s"
    assert_one_run_in_order(log, await advance_events(admin, namespace), every_event=False)
    writes_a, writes_b = canary_writes(bed, namespace, a), canary_writes(bed, namespace, b)
    assert writes_a and writes_b, "both replicas should have acted, one after the other"
    assert max(map(stamp, writes_a)) <= killed + 0.5 < min(map(stamp, writes_b)), (
        "writes of the two replicas overlap in time")
    assert any("became leader" in m for m in b.messages())


async def test_sigterm_releases_the_lease_so_the_standby_takes_over_at_once(
        bed: Any, namespace: str, admin: KubeClient, operator_factory: Callable[..., Operator]) -> None:
    lease = 15.0  # long, so waiting for expiry would be obvious
    a, _ = pair(operator_factory, namespace, timings(lease=lease, renew=10, retry=0.5))
    await wait_holder(admin, namespace, "replica-a", 10)
    with WeightLog(admin, namespace) as log:
        await start_run(admin, namespace, "2s")

        async def mid_run() -> bool:
            st = await status(admin, namespace)
            return st.get("phase") == "Progressing" and int(st.get("canaryWeight") or 0) >= 20

        await wait_for(mid_run, 60, "the run at weight 20", interval=0.05)
        assert a.proc is not None
        a.proc.send_signal(signal.SIGTERM)
        took = await wait_holder(admin, namespace, "replica-b", lease)
        assert a.wait_exit(15) == 0
        await wait_phase(admin, namespace, "Succeeded", seconds=60)
    print(f"\nSIGTERM → replica-b holds the lease after {took:.2f}s (lease {lease:g}s)")
    assert took < 2.0, f"takeover took {took:.2f}s: the lease was not released"
    assert any(m.startswith("released lease") for m in a.messages()), a.messages()[-10:]
    assert_one_run_in_order(log, await advance_events(admin, namespace))


async def test_leader_frozen_past_its_deadline_does_not_act_when_it_wakes(
        bed: Any, namespace: str, admin: KubeClient, operator_factory: Callable[..., Operator]) -> None:
    """Argo Rollouts #2117: a leader paused (here SIGSTOP) while the other replica took over must, on
    waking, stop its canary work before writing anything, and become a standby."""
    # the retry period (the elector's sleep) longer than the step interval, so on waking a canary task's
    # timer fires before the elector's: only the lease check in the task and the client's fence stop it
    a, _ = pair(operator_factory, namespace, timings(retry=2.5))
    await wait_holder(admin, namespace, "replica-a", 10)
    with WeightLog(admin, namespace) as log:
        await start_run(admin, namespace, "1s")

        async def mid_run() -> bool:
            st = await status(admin, namespace)
            return st.get("phase") == "Progressing" and int(st.get("canaryWeight") or 0) >= 10

        await wait_for(mid_run, 60, "the run at weight 10", interval=0.05)
        assert a.proc is not None
        os.kill(a.proc.pid, signal.SIGSTOP)
        frozen = time.time()
        try:
            await wait_holder(admin, namespace, "replica-b", LEASE_S + 2 * 2.5 + 2)

            async def b_advanced() -> bool:  # b two steps on, a's cache and timers two steps behind
                st = await status(admin, namespace)
                return st.get("phase") == "Progressing" and int(st.get("canaryWeight") or 0) >= 30

            await wait_for(b_advanced, 30, "replica-b advancing the run to weight 30", interval=0.05)
        finally:
            os.kill(a.proc.pid, signal.SIGCONT)  # wakes mid-run, every canary timer expired
        woke = time.time()
        await wait_phase(admin, namespace, "Succeeded", seconds=60)

        def stepped_down() -> bool:
            return any("leadership ended" in m for m in a.messages())

        await wait_for(stepped_down, 10, "the woken replica stepping down")
    # Received after the freeze: at most the one request already in flight when SIGSTOP landed (aiohttp
    # sends a body one loop turn after its headers; no client-side lease can recall a request already
    # handed over, and the new leader repairs routes from status). Never a new decision: every step
    # starts with a Canary status write, and none may come from the woken replica.
    late = [e for e in canary_writes(bed, namespace, a) if stamp(e) > frozen + 0.5]
    shown = [(e.verb, e.resource, e.subresource) for e in late]
    assert len(late) <= 1, f"the frozen leader went on writing after waking: {shown}"
    assert not [e for e in late if e.resource == "canaries"], f"the frozen leader started a step: {shown}"
    assert woke > frozen
    assert leader_gauge(a) == 0.0 and a.ready(), "the woken replica is a ready standby"
    assert await holder(admin, namespace) == "replica-b"
    assert_one_run_in_order(log, await advance_events(admin, namespace), every_event=False)


async def test_client_fence_refuses_writes_before_they_reach_the_api_server(
        bed: Any, namespace: str) -> None:
    """The fence a stale leader's client applies: refused writes never reach the API server (audit log),
    both when the lease is already stale before the request and when it goes stale while the request
    waits for a connection (the check right before the headers are written); Lease writes still pass."""
    from canaryd.kube.errors import Fenced
    from canaryd.kube.resources import CONFIGMAP, Resource

    ua = f"e2e-fence-{namespace}"
    client = await bed.admin_client(user_agent=ua)
    calls: list[str] = []
    try:
        client.write_guard = lambda res: res == LEASE
        with pytest.raises(Fenced):
            await client.create(CONFIGMAP, namespace, {"metadata": {"name": "before"}})

        def stale_after_first_check(res: Resource) -> bool:
            calls.append(res.plural)
            return len(calls) == 1  # passes the check before the attempt, fails at the connection

        client.write_guard = stale_after_first_check
        with pytest.raises(Fenced):
            await client.create(CONFIGMAP, namespace, {"metadata": {"name": "in-flight"}})
        assert calls == ["configmaps", "configmaps"]
        client.write_guard = lambda res: res == LEASE
        await client.create(LEASE, namespace, {"metadata": {"name": "fenced-lease"},
                                               "spec": {"holderIdentity": "x"}})
    finally:
        await client.close()
    writes = [(e.verb, e.resource, e.name) for e in bed.audit_events(user_agent_prefix=ua)
              if e.namespace == namespace]
    assert writes == [("create", "leases", "fenced-lease")], writes
