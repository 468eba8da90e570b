"""The 2019 tutorial, end to end (issue 3, scenarios a–h): the v1alpha3 Canary with only its intervals
shortened and the namespace adapted, driven by canaryd running as a separate process under its own
ServiceAccount, each scenario in a namespace of its own.

a. a new image is promoted: weights 5 … 50 in order, Flagger's Event sequence, the Promoted condition,
   the exact builtin PromQL in Prometheus's query log;
b. the new revision answers 500s → Failed after exactly ``threshold`` failed checks, primary untouched;
c. the new revision answers slowly → Failed with ``request duration … > 500ms`` Halt Events;
d. a ConfigMap the target mounts changes → a run, and the primary ends on a ``-primary`` copy of the new data;
e. a second image mid-run restarts the analysis at weight 0; the primary ends on the second image;
f. a revision that never gets ready is rolled back when the progress deadline passes;
g. canaryd SIGKILLed after a status write, after a route write and at a step mid-run: the run completes,
   every weight seen once and in order, the VirtualService equal to status;
h. invalid Canaries beside a valid one: the valid one promotes, the invalid ones say why (status, Warning
   Event, no half-made objects) and recover without a restart once fixed;
and in steady state canaryd sends no GET/LIST (the API server's audit log). Every scenario ends by
checking that canaryd's identity got no 403.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from canaryd.kube.client import KubeClient
from canaryd.kube.errors import NotFound
from canaryd.kube.resources import CANARY, CONFIGMAP, DEPLOYMENT, HPA, SERVICE, VIRTUAL_SERVICE
from e2e.bed.waiting import wait_for
from e2e.canaries import podinfo, set_image
from e2e.mesh.control import MeshControl
from e2e.operator import Operator, wait_ready
from e2e.receivers import Receiver
from e2e.tutorial import (
    IMAGE,
    canary_events,
    canary_status,
    canary_traffic,
    canary_weight,
    canary_weights,
    counts_once,
    forbidden,
    halts,
    hpa,
    is_subsequence,
    primary_image,
    recording,
    tutorial_canary,
    wait_status,
    with_config_volume,
)

THRESHOLD = 4
STEPS = list(range(5, 55, 5))


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


@pytest.fixture
def no_403(bed: Any, namespace: str) -> Iterator[None]:
    """After the test: canaryd's identity was never refused (audit log), whatever the scenario did."""
    yield
    assert forbidden(bed, namespace) == []


async def initialized(admin: KubeClient, bed: Any, ns: str, *, threshold: int = 10, deadline: int = 60,
                      deployment: dict[str, Any] | None = None, interval: str = "1s") -> None:
    await admin.create(DEPLOYMENT, ns, deployment or podinfo(ns))
    await admin.create(HPA, ns, hpa(ns))
    bed.apply(tutorial_canary(ns, threshold=threshold, deadline=deadline, interval=interval), ns)
    await wait_status(admin, ns, "podinfo", "Initialized", lambda s: s.get("phase") == "Initialized")


async def assert_phase(admin: KubeClient, ns: str, phase: str, seconds: float = 120,
                       name: str = "podinfo") -> dict[str, Any]:
    """Wait for a final phase and require ``phase`` (a run that ends otherwise fails at once, with why)."""
    st = await wait_status(admin, ns, name, f"a final phase ({phase} expected)",
                           lambda s: s.get("phase") in ("Succeeded", "Failed"), seconds)
    assert st.get("phase") == phase, (st.get("phase"), st.get("message"), st.get("checks"))
    return st


async def scaled_to_zero(admin: KubeClient, ns: str) -> None:
    """The target scaled to zero: a final phase is written before the scale-down it reports."""
    async def zero() -> bool:
        return int((await admin.get(DEPLOYMENT, ns, "podinfo"))["spec"].get("replicas") or 0) == 0

    await wait_for(zero, 20, "the target scaled to zero")


def expected_run(ns: str) -> list[str]:
    key = f"podinfo.{ns}"
    return [f"New revision detected! Scaling up {key}", f"Starting canary analysis for {key}",
            *[f"Advance {key} canary weight {w}" for w in STEPS],
            f"Copying {key} template spec to podinfo-primary.{ns}", "Routing all traffic to primary",
            f"Promotion completed! Scaling down {key}"]


# ---- a ----


async def test_a_tutorial_promotes_a_new_image(bed: Any, namespace: str, admin: KubeClient,
                                               operator: Operator, loadtester: Receiver,
                                               no_403: None) -> None:
    ns = namespace
    # 2 s steps: the first check comes two scrapes (Prometheus scrapes every 1 s) after the canary got
    # its first requests, as the tutorial's 30 s steps came two scrapes of Istio's 15 s after; with 1 s
    # steps the canary's series may be a single sample old and the first check fails with "no values"
    await initialized(admin, bed, ns, interval="2s")

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
    primary = await admin.get(DEPLOYMENT, ns, "podinfo-primary")
    assert primary["spec"]["selector"]["matchLabels"] == {"app": "podinfo-primary"}
    assert primary["spec"]["template"]["metadata"]["labels"]["app"] == "podinfo-primary"
    primary_hpa = await admin.get(HPA, ns, "podinfo-primary")
    assert primary_hpa["spec"]["scaleTargetRef"]["name"] == "podinfo-primary"
    target = await admin.get(DEPLOYMENT, ns, "podinfo")
    assert target["spec"]["replicas"] == 0
    vs = await admin.get(VIRTUAL_SERVICE, ns, "podinfo")
    assert vs["spec"]["hosts"] == ["app.istio.example.com", "podinfo"]
    assert vs["spec"]["gateways"] == ["public-gateway.istio-system.svc.cluster.local"]
    out = bed.kubectl("-n", ns, "get", "canaries").stdout.split()
    assert out[:4] == ["NAME", "STATUS", "WEIGHT", "LASTTRANSITIONTIME"] and "Initialized" in out

    # the load test: traffic to the canary host from the start of the run (the tutorial's load tester)
    async with recording(admin, ns) as rec, canary_traffic(str(bed.mesh_url), ns, "/"):
        assert rec.weights == [0] and rec.promoted == ["True"]
        bed.kubectl("-n", ns, "set", "image", "deploy/podinfo", f"podinfod={IMAGE}:6.0.1")
        await assert_phase(admin, ns, "Succeeded")
        await wait_for(lambda: rec.weights[-1:] == [0] and rec.promoted[-1:] == ["True"], 10,
                       "final weights and condition seen")

    assert rec.weights == [0, *STEPS, 0], rec.weights
    assert rec.promoted[0] == "True" and rec.promoted[-1] == "True"
    assert "True" not in rec.promoted[1:-1] and len(rec.promoted) >= 3, rec.promoted
    assert await primary_image(admin, ns) == f"{IMAGE}:6.0.1"
    await scaled_to_zero(admin, ns)

    # Flagger's Event sequence for this run (readiness waits depend on timing in both: left out)
    key = f"podinfo.{ns}"
    expected = [f"Initialization done! {key}", *expected_run(ns)]

    async def all_events() -> list[dict[str, Any]] | None:
        got = await canary_events(admin, ns)
        return got if is_subsequence(expected, [str(e.get("message")) for e in got]) else None

    events = await wait_for(all_events, 20, "Flagger's Event sequence")
    assert {e.get("reason") for e in events} == {"Synced"}

    def timing(message: str) -> bool:
        """Readiness waits, and a "no values" Halt when a step's check comes before Prometheus holds two
        scrapes of the canary's brand-new series (a loaded machine): Flagger writes both too."""
        return " not ready: " in message or message.startswith("Halt advancement no values found")

    seen = [str(e.get("message")) for e in events if not timing(str(e.get("message")))]
    assert seen == expected, seen
    assert all(int(e.get("count") or 1) == 1 for e in events if not timing(str(e.get("message"))))
    no_values = sum(int(e.get("count") or 1) for e in events
                    if str(e.get("message")).startswith("Halt advancement no values found"))
    assert no_values <= 2, events  # a timing artefact at the first step, not a canary without traffic

    # the load-test webhook got Flagger's payload
    body = loadtester.bodies("/")[0]
    assert body["name"] == "podinfo" and body["namespace"] == ns and body["phase"] == "Progressing"
    assert body["metadata"] == {"cmd": f"hey -z 1m -q 10 -c 2 http://podinfo.{ns}:9898/"}

    # Prometheus received exactly Flagger's builtin queries (flagger-reference.md §5.1)
    sel = f'reporter="destination", destination_workload_namespace="{ns}", destination_workload=~"podinfo"'
    success = (f' sum( rate( istio_requests_total{{ {sel}, response_code!~"5.*" }}[10s] ) ) / sum( rate('
               f' istio_requests_total{{ {sel} }}[10s] ) ) * 100')
    duration = (f' histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket{{ {sel}'
                f' }}[10s] ) ) by (le) )')
    queries = [json.loads(line).get("params", {}).get("query")
               for line in bed.prometheus_query_log.read_text().splitlines() if line.strip()]
    mine = {q for q in queries if q and f'"{ns}"' in q}
    assert mine == {success, duration}, mine


# ---- b, c ----


async def _failing_run(bed: Any, ns: str, admin: KubeClient, path: str) -> list[str]:
    # 2 s steps: a new revision's error series needs two scrapes (1 s apart) before rate() has a value,
    # so the failed checks measure the injected fault rather than "no values" (those count too)
    await initialized(admin, bed, ns, threshold=THRESHOLD, interval="2s")
    async with canary_traffic(str(bed.mesh_url), ns, path):
        await set_image(admin, ns, "6.0.1")
        await assert_phase(admin, ns, "Failed")
    key = f"podinfo.{ns}"

    async def rolled_back() -> list[dict[str, Any]] | None:
        items = await canary_events(admin, ns)
        return items if f"Canary failed! Scaling down {key}" in [e.get("message") for e in items] else None

    events = await wait_for(rolled_back, 20, "the rollback Events")
    halted = halts(events, key)
    assert sum(int(e.get("count") or 1) for e in halted) == THRESHOLD, [(e["message"], e.get("count"))
                                                                        for e in halted]
    assert all(e.get("type") == "Warning" for e in halted)
    msgs = [str(e.get("message")) for e in events]
    assert f"Rolling back {key} failed checks threshold reached {THRESHOLD}" in msgs
    assert not [m for m in msgs if m.startswith("Promotion completed!")]
    vs = await admin.get(VIRTUAL_SERVICE, ns, "podinfo")
    assert canary_weights(vs) == (0,)
    await scaled_to_zero(admin, ns)
    assert await primary_image(admin, ns) == f"{IMAGE}:6.0.0"
    st = await canary_status(admin, ns)
    assert st["canaryWeight"] == 0 and st["failedChecks"] == 0
    return [str(e.get("message")) for e in halted]


async def test_b_errors_roll_back_after_threshold(bed: Any, namespace: str, admin: KubeClient,
                                                  operator: Operator, loadtester: Receiver,
                                                  no_403: None) -> None:
    texts = await _failing_run(bed, namespace, admin, "/status/500")
    assert any("success rate" in m and "< 99%" in m for m in texts), texts


async def test_c_latency_rolls_back_with_duration_halts(bed: Any, namespace: str, admin: KubeClient,
                                                        operator: Operator, loadtester: Receiver,
                                                        no_403: None) -> None:
    texts = await _failing_run(bed, namespace, admin, "/delay/1")
    assert any("request duration" in m and "> 500ms" in m for m in texts), texts


# ---- d ----


async def test_d_configmap_change_is_promoted_through_a_primary_copy(
        bed: Any, namespace: str, admin: KubeClient, operator: Operator, loadtester: Receiver,
        no_403: None) -> None:
    ns = namespace
    await admin.create(CONFIGMAP, ns, {"apiVersion": "v1", "kind": "ConfigMap",
                                       "metadata": {"name": "podinfo-config", "namespace": ns},
                                       "data": {"color": "blue"}})
    await initialized(admin, bed, ns, deployment=with_config_volume(podinfo(ns), "podinfo-config"))

    def volume(d: dict[str, Any]) -> str:
        return str(d["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"])

    assert volume(await admin.get(DEPLOYMENT, ns, "podinfo-primary")) == "podinfo-config-primary"
    assert (await admin.get(CONFIGMAP, ns, "podinfo-config-primary"))["data"] == {"color": "blue"}
    before = (await canary_status(admin, ns))["trackedConfigs"]
    assert list(before) == ["configmap/podinfo-config"]

    async with recording(admin, ns) as rec:
        await admin.patch(CONFIGMAP, ns, "podinfo-config", {"data": {"color": "green"}})
        st = await assert_phase(admin, ns, "Succeeded")
        await wait_for(lambda: rec.weights[-1:] == [0], 10, "final weights seen")
    assert rec.weights == [0, *STEPS, 0], rec.weights
    assert st["trackedConfigs"]["configmap/podinfo-config"] != before["configmap/podinfo-config"]

    primary = await admin.get(DEPLOYMENT, ns, "podinfo-primary")
    assert volume(primary) == "podinfo-config-primary"
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == f"{IMAGE}:6.0.0"
    assert (await admin.get(CONFIGMAP, ns, "podinfo-config-primary"))["data"] == {"color": "green"}
    assert volume(await admin.get(DEPLOYMENT, ns, "podinfo")) == "podinfo-config"  # the target keeps its own
    # Events follow the status they report: the last one may land a moment after Succeeded
    await counts_once(admin, ns, f"Promotion completed! Scaling down podinfo.{ns}")
    msgs = [str(e.get("message")) for e in await canary_events(admin, ns)]
    assert is_subsequence(expected_run(ns), msgs), msgs


# ---- e ----


async def test_e_second_image_mid_run_restarts_at_zero(bed: Any, namespace: str, admin: KubeClient,
                                                       operator: Operator, loadtester: Receiver,
                                                       no_403: None) -> None:
    ns = namespace
    await initialized(admin, bed, ns)
    async with recording(admin, ns) as rec:
        await set_image(admin, ns, "6.0.1")
        await wait_for(lambda: 20 in rec.weights, 60, "weight 20 of the first run")
        await set_image(admin, ns, "6.0.2")
        await assert_phase(admin, ns, "Succeeded")
        await wait_for(lambda: rec.weights[-1:] == [0], 10, "final weights seen")

    w = rec.weights
    restart = w.index(0, 1)  # the first 0 after the start: the restart
    first, second = w[1:restart], w[restart + 1:]
    assert first == STEPS[:len(first)] and 20 in first and len(first) < len(STEPS), w
    assert second == [*STEPS, 0], w
    assert await primary_image(admin, ns) == f"{IMAGE}:6.0.2"
    key = f"podinfo.{ns}"
    c = await counts_once(admin, ns, f"Promotion completed! Scaling down {key}")
    assert c.get(f"New revision detected! Restarting analysis for {key}") == 1, c
    assert c.get(f"Promotion completed! Scaling down {key}") == 1, c


# ---- f ----


async def test_f_never_ready_revision_rolled_back_at_deadline(bed: Any, namespace: str, admin: KubeClient,
                                                              operator: Operator, loadtester: Receiver,
                                                              no_403: None) -> None:
    ns = namespace
    deadline = 10
    await initialized(admin, bed, ns, deadline=deadline)
    started = time.monotonic()
    await set_image(admin, ns, "6.0.1", never_ready=True)
    st = await assert_phase(admin, ns, "Failed", seconds=deadline + 60)
    took = time.monotonic() - started
    assert took >= deadline - 0.5, took
    key = f"podinfo.{ns}"
    want = (f"Rolling back {key} progress deadline exceeded canary deployment {key} not ready: "
            "waiting for rollout to finish: ")
    assert str(st.get("message", "")).startswith(want), st.get("message")
    # Events follow the status they report: wait for the last one rather than read right after Failed
    await counts_once(admin, ns, f"Canary failed! Scaling down {key}")
    msgs = [str(e.get("message")) for e in await canary_events(admin, ns)]
    assert any(m.startswith(want) for m in msgs), msgs
    assert f"Canary failed! Scaling down {key}" in msgs
    assert not [m for m in msgs if m.startswith(("Advance", "Halt"))], msgs
    assert canary_weights(await admin.get(VIRTUAL_SERVICE, ns, "podinfo")) == (0,)
    await scaled_to_zero(admin, ns)
    assert await primary_image(admin, ns) == f"{IMAGE}:6.0.0"


# ---- g ----


async def _crashed(op: Operator, point: str) -> None:
    """Wait for the process to hit its crash point (exit code 137, the log says which point)."""
    code = await asyncio.to_thread(op.wait_exit, 90)
    assert code == 137, (code, op.messages()[-10:])
    assert f"crash point {point} reached: exiting" in op.messages()[-5:], op.messages()[-10:]


async def _routes_follow_status(admin: KubeClient, ns: str) -> None:
    async def equal() -> bool:
        st = await canary_status(admin, ns)
        vs = await admin.get(VIRTUAL_SERVICE, ns, "podinfo")
        return canary_weight(vs) == int(st.get("canaryWeight") or 0)

    await wait_for(equal, 30, "VirtualService weights equal to status")


async def test_g_sigkill_at_crash_points_run_continues(bed: Any, namespace: str, admin: KubeClient,
                                                       operator: Operator, loadtester: Receiver,
                                                       no_403: None) -> None:
    ns = namespace
    await initialized(admin, bed, ns)
    op = operator
    op.stop()
    op.start(CANARYD_CRASH_AT="after-status-write:4")
    await asyncio.to_thread(wait_ready, op)
    async with recording(admin, ns) as rec:
        await set_image(admin, ns, "6.0.1")
        await _crashed(op, "after-status-write")
        crashed_at = await canary_status(admin, ns)
        assert crashed_at.get("phase") == "Progressing", crashed_at

        op.start(CANARYD_CRASH_AT="after-route-write:3")
        await _crashed(op, "after-route-write")
        assert (await canary_status(admin, ns)).get("phase") == "Progressing"

        op.start()
        await _routes_follow_status(admin, ns)
        await wait_for(lambda: any(w >= 30 for w in rec.weights), 60, "a step in the middle of the run")
        op.kill()  # SIGKILL at an arbitrary point of a step
        op.start()
        await assert_phase(admin, ns, "Succeeded")
        await wait_for(lambda: rec.weights[-1:] == [0], 10, "final weights seen")

    assert rec.weights == [0, *STEPS, 0], rec.weights
    await _routes_follow_status(admin, ns)
    assert await primary_image(admin, ns) == f"{IMAGE}:6.0.1"
    key = f"podinfo.{ns}"
    c = await counts_once(admin, ns, f"Promotion completed! Scaling down {key}")
    # no step repeated: no Advance Event twice (one may be lost with the process that crashed before it)
    advances = {w: c.get(f"Advance {key} canary weight {w}", 0) for w in STEPS}
    assert all(n <= 1 for n in advances.values()), advances
    # Events are written after the status they report (status is the truth): a process killed between the
    # two loses that step's Events (at most one per crash; the step itself is in status and routes)
    assert sum(advances.values()) >= len(STEPS) - 3, advances
    assert c.get(f"Promotion completed! Scaling down {key}") == 1, c
    assert not [m for m in c if m.startswith(("Rolling back", "New revision detected! Restarting"))], c


# ---- h ----


def has_message(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda st: st.get("message") == text


def plain_deployment(ns: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": f"{IMAGE}:6.0.0"}]}}}}


async def _exists(admin: KubeClient, res: Any, ns: str, name: str) -> bool:
    try:
        await admin.get(res, ns, name)
        return True
    except NotFound:
        return False


async def test_h_invalid_canaries_beside_a_valid_one(bed: Any, namespace: str, admin: KubeClient,
                                                     operator: Operator, loadtester: Receiver,
                                                     no_403: None) -> None:
    ns = namespace
    # two broken Canaries: one whose target does not exist, one whose target lacks the selector label
    await admin.create(DEPLOYMENT, ns, plain_deployment(ns, "legacy", {"run": "legacy"}))
    bed.apply(tutorial_canary(ns, name="backend", target="backend", hosts=(), autoscaler=False), ns)
    bed.apply(tutorial_canary(ns, name="legacy", target="legacy", hosts=(), autoscaler=False), ns)
    await initialized(admin, bed, ns)

    missing = (f"target Deployment backend.{ns} not found; create it (or fix spec.targetRef.name) and the "
               "canary initializes when it appears")
    no_label = (f"getSelectorLabel failed: deployment legacy.{ns} spec.selector.matchLabels must contain one "
                "of [app name app.kubernetes.io/name]")
    broken = (("backend", missing, "TargetNotFound"), ("legacy", no_label, "SelectorLabelMissing"))
    for name, text, reason in broken:
        st = await wait_status(admin, ns, name, "its error in status", has_message(text))
        valid = [c for c in st.get("conditions") or [] if c.get("type") == "Valid"]
        assert [(c["status"], c["reason"], c["message"]) for c in valid] == [("False", reason, text)], st
        # the Warning Event follows the status it reports
        events = await wait_for(lambda: canary_events(admin, ns, name), 15, f"{name}'s Warning Event")  # noqa: B023
        assert [(e["type"], e["reason"], e["message"]) for e in events] == [("Warning", "Synced", text)]
    # nothing half-made for them
    for res, name in ((DEPLOYMENT, "legacy-primary"), (SERVICE, "legacy-canary"), (SERVICE, "legacy"),
                      (VIRTUAL_SERVICE, "legacy"), (DEPLOYMENT, "backend-primary"),
                      (VIRTUAL_SERVICE, "backend")):
        assert not await _exists(admin, res, ns, name), name

    # the valid one runs and promotes meanwhile
    await set_image(admin, ns, "6.0.1")
    await assert_phase(admin, ns, "Succeeded")
    assert await primary_image(admin, ns) == f"{IMAGE}:6.0.1"

    # fixing them recovers without a restart: the Deployment appears; the targetRef is pointed elsewhere
    pid = operator.proc.pid if operator.proc else None
    await admin.create(DEPLOYMENT, ns, plain_deployment(ns, "backend", {"app": "backend"}))
    await admin.create(DEPLOYMENT, ns, plain_deployment(ns, "frontend", {"app": "frontend"}))
    await admin.patch(CANARY, ns, "legacy", {"spec": {"targetRef": {"name": "frontend"}}})
    for name, primary in (("backend", "backend-primary"), ("legacy", "frontend-primary")):
        st = await wait_status(admin, ns, name, "Initialized", lambda s: s.get("phase") == "Initialized")
        assert not st.get("message"), st
        assert not [c for c in st.get("conditions") or [] if c.get("type") == "Valid"], st
        assert await _exists(admin, DEPLOYMENT, ns, primary)
    assert operator.running() and operator.proc is not None and operator.proc.pid == pid


# ---- steady state ----


def sample(op: Operator, prefix: str) -> float:
    """The value of the first series of canaryd's /metrics whose line starts with ``prefix``."""
    for line in op.metrics_text().splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return 0.0


def wakeups(op: Operator) -> float:
    return sample(op, 'canaryd_task_wakeups_total{cause="wake"}')


async def test_steady_state_sends_no_get_or_list(bed: Any, namespace: str, admin: KubeClient,
                                                 operator: Operator, loadtester: Receiver,
                                                 no_403: None) -> None:
    """A Succeeded canary whose task keeps waking (its Canary and HPA change, its deadlines pass): every
    read comes from the cache. Counted from the API server's audit log, not canaryd's counters."""
    ns = namespace
    await admin.create(DEPLOYMENT, ns, podinfo(ns))
    await admin.create(HPA, ns, hpa(ns))
    bed.apply(tutorial_canary(ns, step_weight=25), ns)
    await wait_status(admin, ns, "podinfo", "Initialized", lambda s: s.get("phase") == "Initialized")
    await set_image(admin, ns, "6.0.1")
    await assert_phase(admin, ns, "Succeeded")
    # canaryd's own account of its run: the due steps (weight 50, the promotion, and any halted step
    # between; weight 25 is set as soon as the canary is ready, nothing was due) in the step-lateness
    # histogram; its API calls timed per verb and resource
    halted = sum(int(e.get("count") or 1) for e in halts(await canary_events(admin, ns), f"podinfo.{ns}"))
    took = sample(operator, "canaryd_step_lateness_seconds_count")
    assert 2 <= took <= 2 + halted, (took, halted)
    vs_patches = 'canaryd_api_request_duration_seconds_count{resource="virtualservices",verb="patch"}'
    assert sample(operator, vs_patches) >= 3

    def requests() -> list[Any]:
        return list(bed.audit_events(user_agent_prefix=operator.user_agent, stage=None))

    # let the promotion's own writes settle: status, scale-down, then its last Event (logged before it is
    # written, so wait for the Event itself; the audit log is written before the API server answers)
    await counts_once(admin, ns, f"Promotion completed! Scaling down podinfo.{ns}", within=20)
    mark = len(requests())
    woke = wakeups(operator)
    for i in range(3):
        await admin.patch(CANARY, ns, "podinfo", {"metadata": {"annotations": {"e2e/poke": str(i)}}})
        await admin.patch(HPA, ns, "podinfo", {"spec": {"maxReplicas": 5 + i}})
        want = woke + 2 * (i + 1)
        await wait_for(lambda: wakeups(operator) >= want, 30, f"task woken ({i})")  # noqa: B023
    window = requests()[mark:]
    reads = [f"{e.verb} {e.resource} {e.name}" for e in window if e.verb in ("get", "list")]
    assert reads == [], reads
    writes = [f"{e.verb} {e.resource}/{e.subresource} {e.name}" for e in window
              if e.verb not in ("watch", "get", "list")]
    assert writes == [], writes
    assert (await canary_status(admin, ns)).get("phase") == "Succeeded"
