"""The 2019 tutorial, end to end (issue 3, scenarios a–c): the v1alpha3 Canary with only its intervals
shortened and the namespace adapted, driven by canaryd running under its own ServiceAccount.

a. a new image is promoted: weights 5 … 50 in order, Flagger's Event sequence, the Promoted condition,
   the exact builtin PromQL in Prometheus's query log;
b. the new revision answers 500s → Failed after exactly ``threshold`` failed checks, primary untouched;
c. the new revision answers slowly → Failed with ``request duration … > 500ms`` Halt Events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from canaryd.kube.client import KubeClient
from canaryd.kube.resources import CANARY, DEPLOYMENT, HPA, VIRTUAL_SERVICE
from e2e.bed.waiting import wait_for
from e2e.canaries import event_messages, podinfo, set_image, wait_phase
from e2e.mesh.control import MeshControl
from e2e.operator import Operator
from e2e.receivers import Receiver

THRESHOLD = 4


def tutorial_canary(ns: str, *, threshold: int = 10, interval: str = "1s") -> dict[str, Any]:
    """The tutorial's Canary (flagger.app/v1alpha3, canaryAnalysis, legacy metric names); intervals
    shortened (30s → 1s steps over 10s metric windows) and the load tester's namespace adapted."""
    return {
        "apiVersion": "flagger.app/v1alpha3",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "progressDeadlineSeconds": 60,
            "autoscalerRef": {"apiVersion": "autoscaling/v2beta1", "kind": "HorizontalPodAutoscaler",
                              "name": "podinfo"},
            "service": {"port": 9898, "gateways": ["public-gateway.istio-system.svc.cluster.local"],
                        "hosts": ["app.istio.example.com"]},
            "canaryAnalysis": {
                "interval": interval,
                "threshold": threshold,
                "maxWeight": 50,
                "stepWeight": 5,
                "metrics": [
                    {"name": "istio_requests_total", "threshold": 99, "interval": "10s"},
                    {"name": "istio_request_duration_seconds_bucket", "threshold": 500, "interval": "10s"},
                ],
                "webhooks": [{"name": "load-test", "url": f"http://flagger-loadtester.{ns}/", "timeout": "5s",
                              "metadata": {"cmd": f"hey -z 1m -q 10 -c 2 http://podinfo.{ns}:9898/"}}],
            },
        },
    }


def hpa(ns: str) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "podinfo", "namespace": ns},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                     "minReplicas": 2, "maxReplicas": 4,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}}


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client(user_agent="e2e-tutorial")
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def loadtester(bed: Any, namespace: str) -> AsyncIterator[Receiver]:
    """What stands behind ``http://flagger-loadtester.<ns>/``: a receiver that accepts the command (202)."""
    r = Receiver()
    await r.start()
    r.answer("/", 202, "command accepted")
    await MeshControl(str(bed.mesh_url)).register(namespace, "flagger-loadtester", f"127.0.0.1:{r.port}")
    try:
        yield r
    finally:
        await r.stop()


async def initialized(admin: KubeClient, bed: Any, ns: str, threshold: int = 10, interval: str = "1s") -> None:
    await admin.create(DEPLOYMENT, ns, podinfo(ns))
    await admin.create(HPA, ns, hpa(ns))
    bed.apply(tutorial_canary(ns, threshold=threshold, interval=interval), ns)
    await wait_phase(admin, ns, "Initialized", seconds=90)


def canary_weights(vs: dict[str, Any]) -> tuple[int, ...]:
    return tuple(int(d.get("weight", 0)) for route in vs["spec"].get("http", [])
                 for d in route.get("route", []) if d["destination"]["host"].endswith("-canary"))


class Recorder:
    """Watches the VirtualService and the Canary, recording every weight and Promoted status seen."""

    def __init__(self, client: KubeClient, ns: str) -> None:
        self.client, self.ns = client, ns
        self.weights: list[int] = []
        self.promoted: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def _watch(self, res: Any, on: Any) -> None:
        items, rv = await self.client.list(res, self.ns)
        for obj in items:
            on(obj)
        while True:
            async for kind, obj in self.client.watch(res, self.ns, rv, timeout_seconds=60):
                if kind == "BOOKMARK":
                    rv = obj["metadata"]["resourceVersion"]
                    continue
                rv = obj["metadata"]["resourceVersion"]
                if kind != "DELETED":
                    on(obj)

    def _vs(self, vs: dict[str, Any]) -> None:
        if vs["metadata"]["name"] != "podinfo":
            return
        weights = canary_weights(vs)
        w = weights[0] if weights else 0
        if not self.weights or self.weights[-1] != w:
            self.weights.append(w)

    def _canary(self, c: dict[str, Any]) -> None:
        cond = next((x for x in (c.get("status") or {}).get("conditions") or [] if x.get("type") == "Promoted"),
                    None)
        s = str(cond.get("status")) if cond else "none"
        if not self.promoted or self.promoted[-1] != s:
            self.promoted.append(s)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._watch(VIRTUAL_SERVICE, self._vs)),
                       asyncio.create_task(self._watch(CANARY, self._canary))]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


def is_subsequence(expected: list[str], got: list[str]) -> bool:
    it = iter(got)
    return all(any(g == e for g in it) for e in expected)


async def primary_image(admin: KubeClient, ns: str) -> str:
    d = await admin.get(DEPLOYMENT, ns, "podinfo-primary")
    return str(d["spec"]["template"]["spec"]["containers"][0]["image"])


async def test_a_tutorial_promotes_a_new_image(bed: Any, namespace: str, admin: KubeClient,
                                               operator: Operator, loadtester: Receiver) -> None:
    ns = namespace
    await initialized(admin, bed, ns)

    # generated objects: selectors, owners, the target scaled to zero
    canary_obj = await admin.get(CANARY, ns, "podinfo")
    uid = canary_obj["metadata"]["uid"]
    for kind, name in (("deploy", "podinfo-primary"), ("svc", "podinfo"), ("svc", "podinfo-primary"),
                       ("svc", "podinfo-canary"), ("vs", "podinfo"), ("hpa", "podinfo-primary"),
                       ("dr", "podinfo-primary"), ("dr", "podinfo-canary")):
        obj = bed.kubectl_json("-n", ns, "get", kind, name, "-o", "json")
        owners = obj["metadata"].get("ownerReferences") or []
        assert [o["uid"] for o in owners if o.get("controller")] == [uid], (kind, name)
    selectors = {name: bed.kubectl_json("-n", ns, "get", "svc", name, "-o", "json")["spec"]["selector"]
                 for name in ("podinfo", "podinfo-primary", "podinfo-canary")}
    assert selectors == {"podinfo": {"app": "podinfo-primary"}, "podinfo-primary": {"app": "podinfo-primary"},
                         "podinfo-canary": {"app": "podinfo"}}
    target = await admin.get(DEPLOYMENT, ns, "podinfo")
    assert target["spec"]["replicas"] == 0
    vs = await admin.get(VIRTUAL_SERVICE, ns, "podinfo")
    assert vs["spec"]["hosts"] == ["app.istio.example.com", "podinfo"]
    assert vs["spec"]["gateways"] == ["public-gateway.istio-system.svc.cluster.local"]
    out = bed.kubectl("-n", ns, "get", "canaries").stdout.split()
    assert out[:4] == ["NAME", "STATUS", "WEIGHT", "LASTTRANSITIONTIME"] and "Initialized" in out

    recorder = Recorder(admin, ns)
    recorder.start()
    try:
        await wait_for(lambda: recorder.weights == [0] and recorder.promoted == ["True"], 10, "recorder primed")
        bed.kubectl("-n", ns, "set", "image", "deploy/podinfo", "podinfod=ghcr.io/stefanprodan/podinfo:6.0.1")
        await wait_phase(admin, ns, "Succeeded", seconds=120)
        await wait_for(lambda: recorder.weights[-1:] == [0] and recorder.promoted[-1:] == ["True"], 10,
                       "final weights and condition seen")
    finally:
        await recorder.stop()

    assert recorder.weights == [0, *range(5, 55, 5), 0], recorder.weights
    assert recorder.promoted[0] == "True" and recorder.promoted[-1] == "True"
    assert "True" not in recorder.promoted[1:-1] and len(recorder.promoted) >= 3, recorder.promoted
    assert await primary_image(admin, ns) == "ghcr.io/stefanprodan/podinfo:6.0.1"
    target = await admin.get(DEPLOYMENT, ns, "podinfo")
    assert target["spec"]["replicas"] == 0

    key = f"podinfo.{ns}"
    expected = [f"Initialization done! {key}", f"New revision detected! Scaling up {key}",
                f"Starting canary analysis for {key}",
                *[f"Advance {key} canary weight {w}" for w in range(5, 55, 5)],
                f"Copying {key} template spec to podinfo-primary.{ns}", "Routing all traffic to primary",
                f"Promotion completed! Scaling down {key}"]

    async def all_events() -> list[str] | None:
        got = await event_messages(admin, ns)
        return got if is_subsequence(expected, got) else None

    got = await wait_for(all_events, 20, "Flagger's Event sequence")
    assert not [m for m in got if m.startswith("Rolling back")]

    # the load-test webhook got Flagger's payload
    body = loadtester.bodies("/")[0]
    assert body["name"] == "podinfo" and body["namespace"] == ns and body["phase"] == "Progressing"
    assert body["metadata"] == {"cmd": f"hey -z 1m -q 10 -c 2 http://podinfo.{ns}:9898/"}

    # Prometheus received exactly Flagger's builtin queries (flagger-behaviour.md §5.1)
    success = (f' sum( rate( istio_requests_total{{ reporter="destination", destination_workload_namespace="{ns}",'
               f' destination_workload=~"podinfo", response_code!~"5.*" }}[10s] ) ) / sum( rate('
               f' istio_requests_total{{ reporter="destination", destination_workload_namespace="{ns}",'
               f' destination_workload=~"podinfo" }}[10s] ) ) * 100')
    duration = (f' histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket{{'
                f' reporter="destination", destination_workload_namespace="{ns}", destination_workload=~"podinfo"'
                f' }}[10s] ) ) by (le) )')
    queries = {json.loads(line).get("params", {}).get("query")
               for line in bed.prometheus_query_log.read_text().splitlines() if line.strip()}
    assert success in queries and duration in queries


@contextlib.asynccontextmanager
async def canary_traffic(bed: Any, ns: str, path: str, rps: float = 10.0) -> AsyncIterator[None]:
    """The tutorial's fault injection: ``curl http://podinfo-canary:9898<path>`` in a loop (bounded:
    at most ``rps`` requests a second, for as long as the block runs, through the mesh on loopback)."""

    async def loop() -> None:
        async with aiohttp.ClientSession() as s:
            while True:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with s.get(f"{bed.mesh_url}{path}", headers={"Host": f"podinfo-canary.{ns}:9898"},
                                     timeout=aiohttp.ClientTimeout(total=5)):
                        pass
                await asyncio.sleep(1 / rps)

    tasks = [asyncio.create_task(loop()) for _ in range(3)]
    try:
        yield
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


async def _failing_run(bed: Any, ns: str, admin: KubeClient, path: str) -> list[str]:
    # 3 s steps: a new revision's error series needs two scrapes (1 s apart) before rate() has a value,
    # so the later failed checks measure the injected fault rather than "no values"
    await initialized(admin, bed, ns, threshold=THRESHOLD, interval="3s")
    async with canary_traffic(bed, ns, path):
        await set_image(admin, ns, "6.0.1")
        await wait_phase(admin, ns, "Failed", seconds=120)
    key = f"podinfo.{ns}"

    async def rolled_back() -> list[dict[str, Any]] | None:
        items, _ = await admin.list(r_event(), ns)
        msgs = [str(e.get("message")) for e in items]
        return items if f"Canary failed! Scaling down {key}" in msgs else None

    events = await wait_for(rolled_back, 20, "the rollback Events")
    halts = [e for e in events if str(e.get("message", "")).startswith(("Halt ", "Halt advancement"))]
    assert sum(int(e.get("count") or 1) for e in halts) == THRESHOLD, [(e["message"], e.get("count")) for e in halts]
    msgs = [str(e.get("message")) for e in events]
    assert f"Rolling back {key} failed checks threshold reached {THRESHOLD}" in msgs
    vs = await admin.get(VIRTUAL_SERVICE, ns, "podinfo")
    assert canary_weights(vs) == (0,)
    target = await admin.get(DEPLOYMENT, ns, "podinfo")
    assert target["spec"]["replicas"] == 0
    assert await primary_image(admin, ns) == "ghcr.io/stefanprodan/podinfo:6.0.0"
    return [str(e.get("message")) for e in halts]


def r_event() -> Any:
    from canaryd.kube.resources import EVENT

    return EVENT


async def test_b_errors_roll_back_after_threshold(bed: Any, namespace: str, admin: KubeClient,
                                                  operator: Operator, loadtester: Receiver) -> None:
    halts = await _failing_run(bed, namespace, admin, "/status/500")
    assert any("success rate" in m and "< 99%" in m for m in halts), halts


async def test_c_latency_rolls_back_with_duration_halts(bed: Any, namespace: str, admin: KubeClient,
                                                        operator: Operator, loadtester: Receiver) -> None:
    halts = await _failing_run(bed, namespace, admin, "/delay/1")
    assert any("request duration" in m and "> 500ms" in m for m in halts), halts


# ---- d–h: config changes, a second revision mid-run, a release that never gets ready, crashes, bad input ----

async def _events(admin: KubeClient, ns: str) -> list[str]:
    return await event_messages(admin, ns)


async def test_d_configmap_change_starts_a_run_and_promotes_a_primary_copy(
        bed: Any, namespace: str, admin: KubeClient, operator: Operator, loadtester: Receiver) -> None:
    ns = namespace
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "podinfo-config", "namespace": ns},
          "data": {"color": "blue"}}
    bed.apply(cm, ns)
    dep = podinfo(ns)
    dep["spec"]["template"]["spec"]["volumes"] = [{"name": "config", "configMap": {"name": "podinfo-config"}}]
    dep["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [{"name": "config", "mountPath": "/etc/p"}]
    await admin.create(DEPLOYMENT, ns, dep)
    await admin.create(HPA, ns, hpa(ns))
    bed.apply(tutorial_canary(ns), ns)
    await wait_phase(admin, ns, "Initialized", seconds=90)
    primary = bed.kubectl_json("-n", ns, "get", "deploy", "podinfo-primary", "-o", "json")
    assert primary["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == "podinfo-config-primary"
    copy = bed.kubectl_json("-n", ns, "get", "configmap", "podinfo-config-primary", "-o", "json")
    assert copy["data"] == {"color": "blue"}

    bed.kubectl("-n", ns, "patch", "configmap", "podinfo-config", "--type=merge", "-p",
                json.dumps({"data": {"color": "green"}}))
    await wait_phase(admin, ns, "Progressing", seconds=30)
    await wait_phase(admin, ns, "Succeeded", seconds=120)
    copy = bed.kubectl_json("-n", ns, "get", "configmap", "podinfo-config-primary", "-o", "json")
    assert copy["data"] == {"color": "green"}
    assert f"New revision detected! Scaling up podinfo.{ns}" in await _events(admin, ns)


async def test_e_second_image_mid_run_restarts_the_analysis(
        bed: Any, namespace: str, admin: KubeClient, operator: Operator, loadtester: Receiver) -> None:
    ns = namespace
    await initialized(admin, bed, ns)
    recorder = Recorder(admin, ns)
    recorder.start()
    try:
        await wait_for(lambda: recorder.weights == [0], 10, "recorder primed")
        await set_image(admin, ns, "6.0.1")
        await wait_for(lambda: bool(recorder.weights) and recorder.weights[-1] >= 15, 60, "weight 15 reached")
        await set_image(admin, ns, "6.0.2")
        await wait_phase(admin, ns, "Succeeded", seconds=120)
        await wait_for(lambda: recorder.weights[-1:] == [0], 10, "final weight seen")
    finally:
        await recorder.stop()
    drop = next(i for i in range(1, len(recorder.weights)) if recorder.weights[i] < recorder.weights[i - 1])
    assert recorder.weights[drop] == 0, recorder.weights  # restarted at weight 0
    assert recorder.weights[drop + 1:] == [*range(5, 55, 5), 0], recorder.weights
    assert await primary_image(admin, ns) == "ghcr.io/stefanprodan/podinfo:6.0.2"
    assert f"New revision detected! Restarting analysis for podinfo.{ns}" in await _events(admin, ns)


async def test_f_release_that_never_gets_ready_is_rolled_back_at_the_deadline(
        bed: Any, namespace: str, admin: KubeClient, operator: Operator, loadtester: Receiver) -> None:
    ns = namespace
    await initialized(admin, bed, ns)
    c = await admin.get(CANARY, ns, "podinfo")
    c["spec"]["progressDeadlineSeconds"] = 8
    await admin.replace(CANARY, ns, "podinfo", c)
    await set_image(admin, ns, "6.0.1", never_ready=True)
    st = await wait_phase(admin, ns, "Failed", seconds=90)
    assert st["canaryWeight"] == 0

    async def deadline_event() -> str | None:
        return next((m for m in await _events(admin, ns) if "progress deadline exceeded" in m), None)

    text = await wait_for(deadline_event, 20, "the deadline rollback Event")
    assert text.startswith(f"Rolling back podinfo.{ns} progress deadline exceeded")
    assert await primary_image(admin, ns) == "ghcr.io/stefanprodan/podinfo:6.0.0"
    target = await admin.get(DEPLOYMENT, ns, "podinfo")
    assert target["spec"]["replicas"] == 0


@pytest.mark.parametrize("point", ["after-status-write:6", "after-route-write:4"])
async def test_g_sigkill_at_a_crash_point_and_restart_continues_the_run(
        bed: Any, namespace: str, admin: KubeClient, operator_factory: Any, loadtester: Receiver,
        point: str) -> None:
    ns = namespace
    op: Operator = operator_factory(ns, start=False)
    op.start(CANARYD_CRASH_AT=point)
    await initialized(admin, bed, ns)
    recorder = Recorder(admin, ns)
    recorder.start()
    try:
        await wait_for(lambda: recorder.weights == [0], 10, "recorder primed")
        await set_image(admin, ns, "6.0.1")
        code = await asyncio.to_thread(op.wait_exit, 90)
        assert code == 137, f"canaryd did not die at {point} (exit {code})"
        assert any(f"crash point {point.split(':')[0]} reached" in m for m in op.messages())
        before = (await admin.get(CANARY, ns, "podinfo"))["status"]
        op.start()  # no crash point this time
        await wait_phase(admin, ns, "Succeeded", seconds=120)
        await wait_for(lambda: recorder.weights[-1:] == [0], 10, "final weight seen")
    finally:
        await recorder.stop()
    assert before["phase"] == "Progressing"
    assert recorder.weights == [0, *range(5, 55, 5), 0], recorder.weights  # in order, none repeated
    vs = await admin.get(VIRTUAL_SERVICE, ns, "podinfo")
    final = (await admin.get(CANARY, ns, "podinfo"))["status"]
    assert canary_weights(vs) == (final["canaryWeight"],) == (0,)
    advances = [m for m in await _events(admin, ns) if m.startswith(f"Advance podinfo.{ns} canary weight")]
    assert len(advances) == len(set(advances))


async def test_h_an_invalid_canary_beside_a_valid_one(
        bed: Any, namespace: str, admin: KubeClient, operator: Operator, loadtester: Receiver) -> None:
    ns = namespace
    broken = tutorial_canary(ns)
    broken["metadata"]["name"] = "broken"
    broken["spec"]["targetRef"]["name"] = "missing"
    broken["spec"]["service"] = {"port": 9898}
    broken["spec"].pop("autoscalerRef")
    bed.apply(broken, ns)
    await initialized(admin, bed, ns)

    async def reported() -> dict[str, Any] | None:
        st = (await admin.get(CANARY, ns, "broken")).get("status") or {}
        return st if "missing" in str(st.get("message", "")) else None

    st = await wait_for(reported, 30, "the invalid Canary's status message")
    assert any(c.get("type") == "Valid" and c.get("status") == "False" for c in st.get("conditions") or [])
    items, _ = await admin.list(r_event(), ns)
    warnings = [e for e in items if e["involvedObject"]["name"] == "broken" and e.get("type") == "Warning"]
    assert warnings and "missing" in warnings[0]["message"]

    await set_image(admin, ns, "6.0.1")  # the valid one still runs
    await wait_phase(admin, ns, "Succeeded", seconds=120)

    # fixing the broken one (its target appears) recovers without a restart
    fixed = podinfo(ns)
    fixed["metadata"]["name"] = "missing"
    fixed["spec"]["selector"]["matchLabels"] = {"app": "missing"}
    fixed["spec"]["template"]["metadata"]["labels"] = {"app": "missing"}
    await admin.create(DEPLOYMENT, ns, fixed)

    async def broken_initialized() -> bool:
        st = (await admin.get(CANARY, ns, "broken")).get("status") or {}
        return st.get("phase") == "Initialized"

    await wait_for(broken_initialized, 60, "the fixed Canary to initialize")
    assert operator.running()


def _wakeups(op: Operator) -> float:
    total = 0.0
    for line in op.metrics_text().splitlines():
        if line.startswith("canaryd_task_wakeups_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_steady_state_sends_no_reads_and_no_403(
        bed: Any, namespace: str, admin: KubeClient, operator: Operator, loadtester: Receiver) -> None:
    """Shown from the API server's audit log, not from canaryd's own counters: once a Canary is settled,
    changes of the objects it depends on wake its task, and the task reads nothing from the API server."""
    from e2e.operator import IDENTITY

    ns = namespace
    await initialized(admin, bed, ns)
    await set_image(admin, ns, "6.0.1")
    await wait_phase(admin, ns, "Succeeded", seconds=120)
    mark = len(bed.audit_events(username=IDENTITY, user_agent_prefix=operator.user_agent))
    before = _wakeups(operator)
    for i in range(5):  # dependency changes that do not start a run: each wakes the task
        bed.kubectl("-n", ns, "annotate", "--overwrite", "hpa", "podinfo", f"e2e/touch={i}")
    await wait_for(lambda: _wakeups(operator) >= before + 5, 30, "the task woken by the changes")
    after = bed.audit_events(username=IDENTITY, user_agent_prefix=operator.user_agent)[mark:]
    reads = [(e.verb, e.resource, e.name) for e in after if e.verb in ("get", "list")]
    assert reads == [], reads
    everything = bed.audit_events(username=IDENTITY, user_agent_prefix=operator.user_agent)
    assert everything, "the audit log shows canaryd's requests"
    assert [e for e in everything if e.code == 403] == []
    st = (await admin.get(CANARY, ns, "podinfo"))["status"]
    assert st["phase"] == "Succeeded"
