"""docs/operations.md's migration from Flagger, run as written: the ``bash`` block of its *Upgrading from
Flagger* section, read from the file (so the doc and this test cannot drift), each line in order as a
subprocess (``kubectl`` is the bed's, the working directory the repository's root).

The cluster is a bed of its own: it serves Flagger v1.44's Canary CRD (closed status schema), which the
shared bed cannot (the CRD name is cluster-wide and the shared bed serves canaryd's). On it, Flagger's
kustomize Deployment ``istio-system/flagger`` with the exact ``args`` of Flagger's ``kustomize/istio``
overlay (tests/fixtures/flagger_v1_44_args.yaml). kwok pods run nothing, so ``DeploymentPod`` plays the
Deployment's one pod after every line: no pod at zero replicas; Flagger's image runs the real Flagger
v1.44 binary, canaryd's image runs canaryd's ``/flagger`` entry point (``canaryd.cli:flagger_main``), both
with the Deployment's args plus what a pod gets from its cluster (``-kubeconfig`` of the Deployment's
ServiceAccount instead of the in-cluster token, a free ``-port``, the bed's Prometheus as
``-metrics-server`` in place of ``http://prometheus:9090``).

Flagger initializes a Canary and promotes a revision; the steps run; canaryd adopts the Canary with the
VirtualService's weights unchanged throughout (every version the watch saw), Flagger's status fields kept,
the CRD now canaryd's (its status fields stored), and runs the next revision to Succeeded."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from bench import workload
from bench.observe import Observer
from canaryd.cache.informer import Informers
from canaryd.cache.store import Store
from canaryd.engine.revision import is_own_hash
from canaryd.kube.client import KubeClient
from canaryd.kube.resources import CANARY, VIRTUAL_SERVICE
from e2e.bed import Bed
from e2e.bed.procs import terminate
from e2e.bed.waiting import wait_for
from e2e.canaries import event_messages
from e2e.flagger_process import ensure_flagger
from e2e.operator import ROOT, free_port, json_log, log_messages
from e2e.test_flagger_args import FIXTURE, FLAGGER_ENTRY
from e2e.test_readme import bash_blocks

DOC = ROOT / "docs" / "operations.md"
SECTION = "## Upgrading from Flagger\n"
FLAGGER_NS, FLAGGER_IMAGE = "istio-system", "ghcr.io/fluxcd/flagger:1.44.0"
APP_NS = "shop"
SHAPE = workload.Shape(interval=10, step_weight=10, steps=3)  # weights 10, 20, 30, then promotion
APP = "app-0000"
# Flagger's status fields that canaryd keeps as they are when it adopts a Canary at rest (lastTransitionTime
# is the time of the last status write, as in Flagger; conditions are compared without their times)
KEPT = ("phase", "canaryWeight", "failedChecks", "iterations")


def migration_lines(text: str) -> list[str]:
    """The command lines of the first ``bash`` block of the *Upgrading from Flagger* section."""
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = bash_blocks(section)
    assert blocks, "docs/operations.md: no bash block in 'Upgrading from Flagger'"
    return [ln for ln in blocks[0] if ln.strip() and not ln.lstrip().startswith("#")]


def test_the_migration_block_is_found() -> None:
    """The parser on docs/operations.md (no bed needed): the steps a reader types, in their order."""
    lines = migration_lines(DOC.read_text())
    joined = "\n".join(lines)
    order = ["scale deployment/flagger --replicas=0", "--for=delete pod",
             "apply --server-side --force-conflicts -f manifests/crd/", "set image deployment/flagger",
             "scale deployment/flagger --replicas=1", "rollout status"]
    at = [joined.find(x) for x in order]
    assert all(i >= 0 for i in at) and at == sorted(at), (at, lines)
    assert all(ln.startswith("kubectl ") for ln in lines), lines
    # the image the doc sets is the one the manifests deploy
    manifest = yaml.safe_load((ROOT / "manifests" / "deployment.yaml").read_text())
    (image,) = {c["image"] for c in manifest["spec"]["template"]["spec"]["containers"]}
    assert f"set image deployment/flagger flagger={image}" in joined, image


def flagger_deployment() -> list[dict[str, Any]]:
    """Flagger's kustomize install as far as the migration touches it: ServiceAccount and Deployment
    (``kustomize/base/flagger`` with the ``kustomize/istio`` args), and a binding of the ServiceAccount
    (cluster-admin here: Flagger's ClusterRole is wider than canaryd needs; canaryd's own rights are
    e2e/test_rbac.py's)."""
    labels = {"app": "flagger"}
    meta = {"name": "flagger", "namespace": FLAGGER_NS}
    container = {"name": "flagger", "image": FLAGGER_IMAGE, "imagePullPolicy": "IfNotPresent",
                 "ports": [{"name": "http", "containerPort": 8080}], "args": list(FIXTURE["kustomize_istio"])}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "flagger-migration"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"kind": "ServiceAccount", "name": "flagger", "namespace": FLAGGER_NS}]},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
         "spec": {"replicas": 1, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {
                      "serviceAccountName": "flagger",
                      "containers": [container]}}}},
    ]


class DeploymentPod:
    """The one pod of ``istio-system/flagger``, played on this machine: ``sync()`` reads the Deployment and
    ends or starts the process so that it runs what the Deployment says (one at a time, as ``Recreate``)."""

    def __init__(self, bed: Bed, log_dir: Path) -> None:
        self.bed = bed
        self.log_dir = log_dir
        self.kubeconfig = bed.kubeconfig_for_serviceaccount(FLAGGER_NS, "flagger")
        self.running: tuple[str, tuple[str, ...]] | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.history: list[str] = []  # images started, in order
        self.log_paths: dict[str, Path] = {}

    def sync(self) -> None:
        dep = self.bed.kubectl_json("-n", FLAGGER_NS, "get", "deployment", "flagger")
        (container,) = dep["spec"]["template"]["spec"]["containers"]
        want = None
        if dep["spec"].get("replicas", 1) > 0:
            want = (container["image"], tuple(container.get("args") or ()))
        if want == self.running and (want is None or self.alive()):
            return
        self.stop()
        if want is not None:
            self.start(*want)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, image: str, args: tuple[str, ...]) -> None:
        self.port = free_port()
        cluster = (f"-kubeconfig={self.kubeconfig}", f"-port={self.port}",
                   f"-metrics-server={self.bed.prometheus_url}")
        if image.startswith("ghcr.io/fluxcd/flagger:"):
            cmd, who, health = [str(ensure_flagger()), *args, *cluster], "flagger", "healthz"
        elif image.startswith("ghcr.io/canaryd/canaryd:"):
            cmd, who, health = [sys.executable, "-c", FLAGGER_ENTRY, *args, *cluster], "canaryd", "readyz"
        else:
            raise AssertionError(f"no process for image {image}")
        env = {k: v for k, v in os.environ.items()
               if not k.lower().endswith("_proxy") and not k.startswith(("CANARYD_", "KUBECONFIG"))}
        path = self.log_paths.setdefault(who, self.log_dir / f"pod-{who}.log")
        with path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        self.running = (image, args)
        self.history.append(who)
        deadline = time.monotonic() + 120
        while not self._answers(health):
            assert self.alive() and time.monotonic() < deadline, \
                f"{who} not ready: " + "\n".join(self.messages(who)[-20:])
            time.sleep(0.2)

    def _answers(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/{path}", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        terminate(self.proc, timeout=20)
        self.proc, self.running = None, None

    def messages(self, who: str) -> list[str]:
        path = self.log_paths.get(who)
        return log_messages(json_log(path)) if path and path.exists() else []


@pytest.fixture
def flagger_bed() -> Iterator[Bed]:
    """A bed of its own (API server, Prometheus) serving Flagger v1.44's CRDs, as a Flagger install left
    them."""
    b = Bed.temporary(mesh=False, prometheus=True)
    try:
        b.kubectl("replace", "-f", str(ensure_flagger().parent / "crd.yaml"))
        b.kubectl("create", "namespace", FLAGGER_NS)
        b.kubectl("create", "namespace", APP_NS)
        yield b
    finally:
        Bed(b.dir).down(keep_logs=False)


@pytest.fixture
async def admin(flagger_bed: Bed) -> AsyncIterator[KubeClient]:
    client = await flagger_bed.admin_client(user_agent="canaryd-e2e-migration")
    yield client
    await client.close()


def route_weights(vs: dict[str, Any]) -> list[tuple[str, int]]:
    return [(d["destination"]["host"], int(d.get("weight", 0)))
            for http in vs.get("spec", {}).get("http", []) for d in http.get("route", [])]


class RouteWatch:
    """Every version of the namespace's VirtualServices the API server's watch delivers: (resourceVersion,
    generation, weights)."""

    def __init__(self, client: KubeClient, namespace: str) -> None:
        self.store = Store()
        self.seen: list[tuple[str, int, list[tuple[str, int]]]] = []
        self.informers = Informers(client, self.store, (VIRTUAL_SERVICE,), namespace=namespace,
                                   registry=CollectorRegistry(), watch_timeout=600)
        self._unsubscribe = self.store.subscribe(self._changed)

    def _changed(self, kind: str, namespace: str, name: str) -> None:
        vs = self.store.get(kind, namespace, name)
        if vs is not None and name == APP:
            meta = vs["metadata"]
            self.seen.append((meta["resourceVersion"], int(meta.get("generation", 0)), route_weights(vs)))

    async def start(self) -> None:
        await self.informers.start()
        await self.informers.wait_synced(60)

    async def stop(self) -> None:
        self._unsubscribe()
        await self.informers.stop()


def run_line(bed: Bed, line: str) -> subprocess.CompletedProcess[str]:
    """One line of the doc in bash, as a reader's terminal on this cluster would run it."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(KUBECONFIG=bed.kubeconfig, KUBECACHEDIR=str(bed.dir / "kubectl-cache"),
               PATH=f"{Path(bed.kubectl_path).parent}{os.pathsep}{env.get('PATH', '')}")
    got = subprocess.run(["bash", "-c", f"set -eo pipefail\n{line}"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=360, check=False)
    assert got.returncode == 0, f"{line}\n{got.stdout}\n{got.stderr}"
    return got


def conditions(status: dict[str, Any]) -> list[dict[str, Any]]:
    keys = ("type", "status", "reason", "message")
    return [{k: c.get(k) for k in keys} for c in status.get("conditions", [])]


def managers(canary: dict[str, Any]) -> set[str]:
    return {m.get("manager", "") for m in canary["metadata"].get("managedFields", [])
            if m.get("subresource") == "status"}


async def test_the_documented_migration_hands_flagger_s_canaries_to_canaryd(
        flagger_bed: Bed, admin: KubeClient, tmp_path: Path) -> None:
    bed = flagger_bed
    lines = migration_lines(DOC.read_text())
    bed.apply({"apiVersion": "v1", "kind": "List", "items": flagger_deployment()})
    pod = DeploymentPod(bed, tmp_path)
    observer = Observer(admin, APP_NS)
    routes = RouteWatch(admin, APP_NS)
    await observer.start()
    await routes.start()
    try:
        await asyncio.to_thread(pod.sync)
        assert pod.history == ["flagger"]
        tl = observer.timelines
        await workload.create_workload(admin, APP_NS, 1, SHAPE, str(bed.prometheus_url),
                                       create_namespace_too=False)
        await wait_for(lambda: tl.phase(APP) == "Initialized", 180, "Flagger initializes the canary")
        await workload.trigger(admin, APP_NS, APP, "v2")
        await wait_for(lambda: tl.phase(APP) in ("Succeeded", "Failed"), 240, "Flagger's run ends")
        assert tl.phase(APP) == "Succeeded", pod.messages("flagger")[-20:]
        assert any(ph == "Progressing" and w == 30 for _, ph, w in tl.status[APP]), tl.status[APP]

        before = dict(await admin.get(CANARY, APP_NS, APP))
        st0 = before["status"]
        assert not is_own_hash(st0["lastAppliedSpec"]) and "flagger" in managers(before), before["metadata"]
        assert "nextStepAt" not in json.dumps(bed.kubectl_json("get", "crd", "canaries.flagger.app"))
        vs_before = len(routes.seen)
        settled = routes.seen[-1]
        flagger_events = len(await event_messages(admin, APP_NS))

        for line in lines:
            await asyncio.to_thread(run_line, bed, line)
            await asyncio.to_thread(pod.sync)
        assert pod.history == ["flagger", "canaryd"], pod.history
        assert pod.running is not None and pod.running[0].startswith("ghcr.io/canaryd/canaryd:")

        # the CRD step applied: the served schema has canaryd's status fields
        crd = bed.kubectl_json("get", "crd", "canaries.flagger.app")
        (v1beta1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
        status_props = v1beta1["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
        assert {"checks", "nextStepAt", "observedGeneration"} <= set(status_props), sorted(status_props)

        async def adopted() -> dict[str, Any] | None:
            c = dict(await admin.get(CANARY, APP_NS, APP))
            return c if is_own_hash(c["status"].get("lastAppliedSpec", "")) else None

        after = await wait_for(adopted, 60, "canaryd adopts Flagger's status")
        st1 = after["status"]
        assert {k: st1.get(k) for k in KEPT} == {k: st0.get(k) for k in KEPT}, (st0, st1)
        assert (st1.get("trackedConfigs") or {}) == (st0.get("trackedConfigs") or {}), (st0, st1)
        assert conditions(st1) == conditions(st0), (st0, st1)
        assert "canaryd" in managers(after), after["metadata"]["managedFields"]

        # no traffic shift at the take-over: every version the watch saw since Flagger settled has the
        # settled weights, and canaryd did not rewrite the VirtualService at all
        took_over = routes.seen[vs_before - 1:]
        assert all(w == settled[2] for _, _, w in took_over), took_over
        assert {g for _, g, _ in took_over} == {settled[1]}, took_over
        assert [w for _, w in settled[2]] == [100, 0], settled
        messages = (await event_messages(admin, APP_NS))[flagger_events:]
        assert not any("taken over" in m or m.startswith("New revision") for m in messages), messages

        # canaryd drives the next revision to the end, with its own status fields stored by the new CRD
        at_switch = len(tl.status[APP])
        await workload.trigger(admin, APP_NS, APP, "v3")
        await wait_for(lambda: len(tl.status[APP]) > at_switch and tl.phase(APP) in ("Succeeded", "Failed"),
                       240, "canaryd's run ends")
        assert tl.phase(APP) == "Succeeded", pod.messages("canaryd")[-20:]
        run = [w for _, ph, w in tl.status[APP][at_switch:] if ph == "Progressing"]
        assert [w for w in run if w > 0][:3] == [10, 20, 30], run
        final = (await admin.get(CANARY, APP_NS, APP))["status"]
        assert "observedGeneration" in final and "checks" in final, final

        async def promoted() -> list[str] | None:  # Events follow the Succeeded status they report
            got = (await event_messages(admin, APP_NS))[flagger_events:]
            return got if any(m.startswith("Promotion completed") for m in got) else None

        messages = await wait_for(promoted, 20, "canaryd's promotion Event")
        assert any(m.startswith("New revision detected") for m in messages), messages
    finally:
        await routes.stop()
        await observer.stop()
        await asyncio.to_thread(pod.stop)
