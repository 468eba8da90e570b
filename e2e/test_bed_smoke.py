"""Smoke tests that prove the bed is a real cluster: each asserts something a fake API would get wrong
(controller-made objects and status, rolling updates, 410 on compacted watches, schema validation by
Istio's CRDs, version round trips, the audit log of a token-authenticated client, and the controls)."""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from canaryd.kube.resources import DEPLOYMENT
from e2e.bed import NEVER_READY, READY_AFTER, AuditEvent, Bed, BedError
from e2e.bed.bed import reap_orphans
from e2e.bed.cluster import Cluster
from e2e.bed.procs import Procs, alive
from e2e.bed.waiting import wait_for

pytestmark = pytest.mark.e2e


PODINFO = "ghcr.io/stefanprodan/podinfo"


def deployment(name: str, replicas: int, image: str, *, never_ready: bool = False) -> dict[str, Any]:
    """A podinfo Deployment; ``never_ready`` marks its pods for the bed's kwok stage and, for a real
    cluster, gives them a readiness probe that cannot pass."""
    labels = {"app": name, **({NEVER_READY: "true"} if never_ready else {})}
    container: dict[str, Any] = {"name": name, "image": image, "ports": [{"containerPort": 9898}]}
    if never_ready:
        container["readinessProbe"] = {"tcpSocket": {"port": 1}, "periodSeconds": 5}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [container]}},
        },
    }


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind), None)


def available(dep: dict[str, Any], replicas: int) -> bool:
    st = dep.get("status", {})
    cond = condition(dep, "Available")
    return (st.get("observedGeneration") == dep["metadata"]["generation"]
            and st.get("updatedReplicas") == replicas and st.get("availableReplicas") == replicas
            and st.get("replicas") == replicas and cond is not None and cond["status"] == "True")


async def deployment_when(bed: Cluster, ns: str, name: str, ok: Callable[[dict[str, Any]], bool],
                          timeout: float, what: str) -> dict[str, Any]:  # noqa: ASYNC109
    """Waits until the Deployment satisfies ``ok`` and returns it."""
    def check() -> dict[str, Any] | None:
        dep: dict[str, Any] = bed.kubectl_json("-n", ns, "get", "deployment", name)
        return dep if ok(dep) else None

    return await wait_for(check, timeout, what)


def pods_of(bed: Cluster, ns: str, app: str) -> list[dict[str, Any]]:
    return list(bed.kubectl_json("-n", ns, "get", "pods", "-l", f"app={app}")["items"])


async def test_deployment_gets_replicaset_and_three_ready_pods(bed: Cluster, namespace: str) -> None:
    bed.apply(deployment("web", 3, f"{PODINFO}:6.0.0"), namespace)
    dep = await deployment_when(bed, namespace, "web", lambda d: available(d, 3), 60,
                                "Deployment web available with 3 replicas")
    cond = condition(dep, "Available")
    assert cond is not None and cond["reason"] == "MinimumReplicasAvailable"

    rs_list = bed.kubectl_json("-n", namespace, "get", "replicasets")["items"]
    assert len(rs_list) == 1
    rs = rs_list[0]
    assert rs["metadata"]["ownerReferences"][0]["uid"] == dep["metadata"]["uid"]
    assert rs["status"]["readyReplicas"] == 3
    pods = pods_of(bed, namespace, "web")
    assert len(pods) == 3
    for pod in pods:
        assert pod["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
        assert pod["spec"]["nodeName"] == "kwok-node-0"  # bound by the scheduler
        assert pod["status"]["phase"] == "Running"
        ready = condition(pod, "Ready")
        assert ready is not None and ready["status"] == "True"
        assert pod["metadata"]["labels"]["pod-template-hash"] == rs["metadata"]["labels"]["pod-template-hash"]


async def test_set_image_rolls_out_and_status_follows(bed: Cluster, namespace: str) -> None:
    bed.apply(deployment("web", 3, f"{PODINFO}:6.0.0"), namespace)
    await wait_for(lambda: available(bed.kubectl_json("-n", namespace, "get", "deploy", "web"), 3), 60,
                   "first rollout")
    first = bed.kubectl_json("-n", namespace, "get", "deploy", "web")
    assert first["metadata"]["generation"] == 1

    bed.kubectl("-n", namespace, "set", "image", "deployment/web", f"web={PODINFO}:6.0.1")
    dep = await deployment_when(bed, namespace, "web",
                                lambda d: available(d, 3) and d["metadata"]["generation"] == 2, 60,
                                "rolling update to podinfo 6.0.1")
    assert dep["status"]["observedGeneration"] == 2
    assert dep["status"]["updatedReplicas"] == 3
    progressing = condition(dep, "Progressing")
    assert progressing is not None and progressing["reason"] == "NewReplicaSetAvailable"

    def replica_sets() -> dict[str, int] | None:
        items = bed.kubectl_json("-n", namespace, "get", "replicasets")["items"]
        by_image = {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs["spec"]["replicas"]
                    for rs in items}
        return by_image if by_image == {f"{PODINFO}:6.0.0": 0, f"{PODINFO}:6.0.1": 3} else None

    await wait_for(replica_sets, 30, "old ReplicaSet scaled to 0, new one to 3")
    images = {p["spec"]["containers"][0]["image"] for p in pods_of(bed, namespace, "web")
              if "deletionTimestamp" not in p["metadata"]}
    assert images == {f"{PODINFO}:6.0.1"}
    rollout = bed.kubectl("-n", namespace, "rollout", "status", "deployment/web", "--timeout=30s")
    assert "successfully rolled out" in rollout.stdout


async def test_watch_from_compacted_resource_version_is_410_gone(bed: Cluster, namespace: str) -> None:
    """podtemplates have no watch cache in the bed, so the watch reaches etcd, which has compacted the
    revision away: the API server answers 410 Gone (Expired), as informers must handle."""
    if not isinstance(bed, Bed):
        pytest.fail("this test compacts the bed's etcd; run it on the local bed")
    template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c",
                                                                                          "image": "x"}]}}}
    bed.apply(template, namespace)
    old_rv = bed.kubectl_json("-n", namespace, "get", "podtemplate", "t")["metadata"]["resourceVersion"]
    for i in range(3):
        bed.kubectl("-n", namespace, "label", "podtemplate", "t", f"step={i}", "--overwrite")
    listed = json.loads(bed.kubectl("get", "--raw", f"/api/v1/namespaces/{namespace}/podtemplates").stdout)
    current_rv = listed["metadata"]["resourceVersion"]
    compacted = bed.compact_etcd()
    assert compacted >= int(current_rv) > int(old_rv)

    url = f"{bed.api_url}/api/v1/namespaces/{namespace}/podtemplates"
    ctx: ssl.SSLContext = bed.ssl_context()
    async with aiohttp.ClientSession() as session:
        async def first_event(rv: str) -> tuple[int, dict[str, Any] | None]:
            params = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "2",
                      "allowWatchBookmarks": "false"}
            async with session.get(url, params=params, ssl=ctx) as resp:
                if resp.status != 200:
                    return resp.status, await resp.json()
                line = await resp.content.readline()
                return resp.status, json.loads(line) if line.strip() else None

        status, body = await first_event(old_rv)
        # the API server may refuse up front (HTTP 410) or start the stream with an ERROR event; both are 410
        status_obj: dict[str, Any] = (body if status == 410 else (body or {}).get("object")) or {}
        assert status == 410 or (body is not None and body["type"] == "ERROR"), (status, body)
        assert status_obj["kind"] == "Status" and status_obj["code"] == 410, status_obj
        assert status_obj["reason"] in ("Expired", "Gone"), status_obj
        assert "too old" in status_obj["message"], status_obj

        # control: a resourceVersion newer than the compaction is watchable (no error, the stream just times
        # out). It is taken from a write after the compaction: tests sharing the bed write concurrently, so
        # the compaction may already be past the list's resourceVersion
        bed.kubectl("-n", namespace, "label", "podtemplate", "t", "step=after", "--overwrite")
        after_rv = bed.kubectl_json("-n", namespace, "get", "podtemplate", "t")["metadata"]["resourceVersion"]
        assert int(after_rv) > compacted
        status, body = await first_event(after_rv)
        assert status == 200 and (body is None or body["type"] != "ERROR"), body


async def test_never_ready_marked_deployment_never_becomes_available(bed: Cluster, namespace: str) -> None:
    bed.apply(deployment("bad", 2, f"{PODINFO}:6.0.0", never_ready=True), namespace)

    def running_not_ready() -> bool:
        pods = pods_of(bed, namespace, "bad")
        return len(pods) == 2 and all(
            p["status"].get("phase") == "Running" and (condition(p, "Ready") or {}).get("status") == "False"
            for p in pods)

    await wait_for(running_not_ready, 60, "2 pods Running with Ready=False")
    # a control Deployment created after it becomes available: kwok has handled later pods by then,
    # and the marked pods must still be NotReady
    bed.apply(deployment("good", 1, f"{PODINFO}:6.0.0"), namespace)
    await wait_for(lambda: available(bed.kubectl_json("-n", namespace, "get", "deploy", "good"), 1), 60,
                   "control Deployment available")

    def controller_saw_it(d: dict[str, Any]) -> bool:
        st = d.get("status", {})
        return bool(st.get("updatedReplicas") == 2 and st.get("unavailableReplicas") == 2
                    and condition(d, "Available"))

    dep = await deployment_when(bed, namespace, "bad", controller_saw_it, 30,
                                "deployment controller reporting 2 unavailable replicas")
    assert running_not_ready()
    assert dep["status"].get("availableReplicas", 0) == 0
    assert dep["status"].get("readyReplicas", 0) == 0
    cond = condition(dep, "Available")
    assert cond is not None and cond["status"] == "False" and cond["reason"] == "MinimumReplicasUnavailable"


async def test_a_ready_after_annotated_pod_becomes_ready_only_that_long_after_it_was_created(
        bed: Cluster, namespace: str) -> None:
    """The benchmark's slow rollouts (``--ready-after``): kwok holds the annotated pod Pending for the given
    duration; an unannotated pod created beside it is Ready at once."""
    slow = deployment("slow", 1, f"{PODINFO}:6.0.0")
    slow["spec"]["template"]["metadata"]["annotations"] = {READY_AFTER: "6s"}
    bed.apply(slow, namespace)
    bed.apply(deployment("quick", 1, f"{PODINFO}:6.0.0"), namespace)
    for name in ("slow", "quick"):
        await deployment_when(bed, namespace, name, lambda d: available(d, 1), 60,
                              f"Deployment {name} available")

    def seconds_to_ready(app: str) -> float:
        (pod,) = pods_of(bed, namespace, app)
        ready = condition(pod, "Ready")
        assert ready is not None and ready["status"] == "True"
        created = dt.datetime.fromisoformat(pod["metadata"]["creationTimestamp"])
        return (dt.datetime.fromisoformat(ready["lastTransitionTime"]) - created).total_seconds()

    # both timestamps are whole seconds: a 6 s delay reads at least 5
    slow_s, quick_s = seconds_to_ready("slow"), seconds_to_ready("quick")
    assert slow_s >= 5, slow_s
    assert quick_s < slow_s, (quick_s, slow_s)


async def test_audit_log_names_serviceaccount_client_and_user_agent(bed: Cluster, namespace: str) -> None:
    bed.kubectl("-n", namespace, "create", "rolebinding", "reader-view", "--clusterrole=view",
                f"--serviceaccount={namespace}:reader")
    kubeconfig = bed.kubeconfig_for_serviceaccount(namespace, "reader")
    got = bed.kubectl("-n", namespace, "get", "pods", kubeconfig=kubeconfig)
    assert got.returncode == 0
    refused = bed.kubectl("get", "nodes", kubeconfig=kubeconfig, check=False)
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower()
    user = f"system:serviceaccount:{namespace}:reader"

    def seen() -> list[AuditEvent] | None:
        events = [e for e in bed.audit_events(username=user)
                  if e.resource in ("pods", "nodes") and e.verb == "list"]
        return events if {e.resource for e in events} == {"pods", "nodes"} else None

    events = await wait_for(seen, 10, f"audit events of {user}")
    pods = next(e for e in events if e.resource == "pods")
    assert pods.namespace == namespace and pods.code == 200
    assert pods.user_agent.startswith("kubectl/")
    nodes = next(e for e in events if e.resource == "nodes")
    assert nodes.code == 403

    # a client named by its user agent (canaryd's own HTTP client, admin certificate)
    client = await bed.admin_client(user_agent="canaryd-smoke/1.0")
    try:
        await client.list(DEPLOYMENT, namespace)
    finally:
        await client.close()
    mine = await wait_for(lambda: bed.audit_events(user_agent_prefix="canaryd-smoke/1.0"), 10,
                          "audit events of user agent canaryd-smoke/1.0")
    assert mine[0].username == "admin" and mine[0].resource == "deployments"
    assert mine[0].namespace == namespace


GROUP = "networking.istio.io"
VS_TEMPLATE = """
apiVersion: networking.istio.io/{version}
kind: VirtualService
metadata: {{name: {name}}}
spec:
  hosts: [podinfo]
  gateways: [mesh]
  http:
  - route:
    - destination: {{host: podinfo-primary, port: {{number: 9898}}}}
      weight: {primary}
    - destination: {{host: podinfo-canary, port: {{number: 9898}}}}
      weight: {canary}
"""


def weights(vs: dict[str, Any]) -> list[Any]:
    return [r["weight"] for r in vs["spec"]["http"][0]["route"]]


async def test_malformed_virtualservice_is_rejected_by_the_api_server(bed: Cluster, namespace: str) -> None:
    bad = bed.kubectl("-n", namespace, "apply", "-f", "-", check=False,
                      input=VS_TEMPLATE.format(version="v1beta1", name="bad", primary='"abc"', canary=10))
    assert bad.returncode != 0
    assert "spec.http[0].route[0].weight" in bad.stderr and "integer" in bad.stderr, bad.stderr
    missing = bed.kubectl("-n", namespace, "get", "virtualservice", "bad", check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
    good = bed.kubectl("-n", namespace, "apply", "-f", "-",
                       input=VS_TEMPLATE.format(version="v1beta1", name="good", primary=90, canary=10))
    assert good.returncode == 0


@pytest.mark.parametrize("write_version", ["v1alpha3", "v1beta1", "v1"])
async def test_virtualservice_round_trips_through_all_served_versions(bed: Cluster, namespace: str,
                                                                      write_version: str) -> None:
    bed.kubectl("-n", namespace, "apply", "-f", "-",
                input=VS_TEMPLATE.format(version=write_version, name="podinfo", primary=90, canary=10))
    for version in ("v1alpha3", "v1beta1", "v1"):
        vs = bed.kubectl_json("-n", namespace, "get", f"virtualservices.{version}.{GROUP}", "podinfo")
        assert vs["apiVersion"] == f"networking.istio.io/{version}"
        assert weights(vs) == [90, 10]
        assert vs["spec"]["hosts"] == ["podinfo"]
    patch = json.dumps({"spec": {"http": [{"route": [
        {"destination": {"host": "podinfo-primary", "port": {"number": 9898}}, "weight": 80},
        {"destination": {"host": "podinfo-canary", "port": {"number": 9898}}, "weight": 20}]}]}})
    other = {"v1alpha3": "v1", "v1beta1": "v1alpha3", "v1": "v1beta1"}[write_version]
    bed.kubectl("-n", namespace, "patch", f"virtualservices.{other}.networking.istio.io", "podinfo",
                "--type=merge", "-p", patch)
    for version in ("v1alpha3", "v1beta1", "v1"):
        vs = bed.kubectl_json("-n", namespace, "get", f"virtualservices.{version}.{GROUP}", "podinfo")
        assert weights(vs) == [80, 20]
        assert vs["metadata"]["generation"] == 2


@pytest.fixture
def own_bed() -> Iterator[Callable[..., Bed]]:
    """Extra beds for tests that stop components (the session's bed keeps running); torn down after."""
    made: list[Bed] = []

    def make(*, mesh: bool = True, prometheus: bool = True) -> Bed:
        b = Bed.temporary(mesh=mesh, prometheus=prometheus)
        made.append(b)
        return b

    yield make
    for b in made:
        Bed(b.dir).down(keep_logs=False)  # re-read from disk: the test may have restarted it


def api_ready(b: Bed) -> bool:
    try:
        with urllib.request.urlopen(f"{b.api_url}/readyz", context=b.ssl_context(), timeout=2) as resp:
            return bool(resp.status == 200 and resp.read() == b"ok")
    except OSError:
        return False


def test_controls_restart_apiserver_and_prometheus_and_recover_a_killed_run(
        bed: Cluster, own_bed: Callable[..., Bed]) -> None:
    b = own_bed(mesh=True, prometheus=True)
    assert b.dir != getattr(bed, "dir", None)
    b.kubectl("create", "namespace", "keep-me")
    port = b.state["ports"]["apiserver"]

    b.stop("apiserver")
    assert not b.procs.running("apiserver") and not api_ready(b)
    assert b.procs.running("etcd") and b.procs.running("controller-manager")
    b.start("apiserver")
    assert b.state["ports"]["apiserver"] == port and api_ready(b)
    assert b.kubectl_json("get", "namespace", "keep-me")["metadata"]["name"] == "keep-me"  # etcd data kept

    prom = b.prometheus_url
    assert prom is not None
    b.stop("prometheus")
    assert not b.procs.running("prometheus")
    b.start("prometheus")
    assert b.prometheus_url == prom and b.procs.running("prometheus")

    mesh = b.mesh_url
    assert mesh is not None
    b.stop("mesh", kill=True)
    assert not b.procs.running("mesh")
    b.start("mesh")
    with urllib.request.urlopen(f"{mesh}/_bed/healthz", timeout=5) as resp:
        assert resp.status == 200 and b.mesh_url == mesh

    # a killed run: a new process finds the old bed's pid files, ends those processes and starts afresh
    old = b.procs.pids()
    gone = subprocess.Popen(["true"])
    gone.wait()
    again = Bed(b.dir)
    again.up(mesh=False, prometheus=False, owner=gone.pid)  # its owner is already dead
    assert not any(alive(pid) for pid in old.values()), old
    assert api_ready(again)
    missing = again.kubectl("get", "namespace", "keep-me", check=False)
    assert missing.returncode != 0  # a fresh etcd
    etcd_data = Path(again.state["etcd_data"])
    assert etcd_data.exists()

    # the next test session reaps beds whose owner died: processes ended, tmpfs data and dir removed
    new_pids = again.procs.pids()
    assert b.dir in reap_orphans(b.dir.parent)
    assert not any(alive(pid) for pid in new_pids.values()), new_pids
    assert not etcd_data.exists() and not b.dir.exists()


async def test_prometheus_scrapes_the_mesh_every_second_and_logs_queries(bed: Cluster) -> None:
    if not isinstance(bed, Bed):
        pytest.fail("this test reads the bed's Prometheus config and query log")
    assert bed.prometheus_url and bed.mesh_url
    query = 'up{job="mesh"} == 1 # bed-smoke-' + os.urandom(4).hex()

    async with aiohttp.ClientSession() as session:
        async def target_up() -> list[Any] | None:
            async with session.get(f"{bed.prometheus_url}/api/v1/query", params={"query": query}) as r:
                body = await r.json()
            return list(body["data"]["result"]) or None

        result = await wait_for(target_up, 20, "Prometheus scraping the mesh simulator")
        assert result[0]["metric"]["instance"] == bed.mesh_url.removeprefix("http://")
        async with session.get(f"{bed.prometheus_url}/api/v1/targets") as r:
            targets = (await r.json())["data"]["activeTargets"]
    mesh = [t for t in targets if t["labels"]["job"] == "mesh"]
    assert len(mesh) == 1 and mesh[0]["scrapeInterval"] == "1s" and mesh[0]["health"] == "up"

    def logged() -> list[dict[str, Any]]:
        lines = bed.prometheus_query_log.read_text().splitlines() if bed.prometheus_query_log.exists() else []
        return [e for e in map(json.loads, lines) if e.get("params", {}).get("query") == query]

    entries = await wait_for(logged, 10, "the query in Prometheus's query log")
    assert entries[0]["httpRequest"]["path"] == "/api/v1/query"


def test_a_component_dying_at_start_is_named_with_its_log_and_leaves_nothing_running(tmp_path: Path) -> None:
    with pytest.raises(BedError) as err:
        Bed.temporary(mesh=False, prometheus=False, root=tmp_path, extra_apiserver_args=["--no-such-flag=1"])
    assert err.value.component == "apiserver"
    assert "exited" in err.value.why and "no-such-flag" in err.value.details
    (bed_dir,) = tmp_path.iterdir()
    etcd = Procs(bed_dir).record("etcd")
    assert etcd is None or not etcd.matches()
    assert "etcd" in (bed_dir / "bed.json").read_text()  # it had been started, and was ended by pid
