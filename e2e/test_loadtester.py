"""``canaryd loadtester`` on the bed: gates kept in a ConfigMap survive restarts (under the load tester's own
ServiceAccount and the Role of ``manifests/loadtester``), concurrent writers lose nothing, gates expire and
are capped so the ConfigMap stays bounded, and the tutorial's webhook works through the mesh simulator with
the token in its URL (refused without it), with hey's requests counted by the simulator's Istio metrics.

Substitutions the bed forces: the load tester runs as a local process registered with the mesh for Service
``flagger-loadtester`` (the Deployment's pods are kwok's, they run nothing), and it reaches
``podinfo.<ns>:9898`` through the simulator's proxy (``HTTP_PROXY``) instead of cluster DNS."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from e2e.bed.waiting import wait_for
from e2e.loadtester import GATES, MANIFESTS, LoadTester, install, webhook_url
from e2e.operator import mesh_proxy


def gate_data(bed: Any, namespace: str) -> dict[str, str]:
    got = bed.kubectl("-n", namespace, "get", "configmap", GATES, "-o", "json", check=False)
    if got.returncode != 0:
        return {}
    data: dict[str, str] = json.loads(got.stdout).get("data") or {}
    return data


def open_gates(bed: Any, namespace: str) -> set[str]:
    """The gate keys of the ConfigMap, each checked to hold an expiry (``open until <time>``)."""
    data = gate_data(bed, namespace)
    assert all(v.startswith("open until ") for v in data.values()), data
    return set(data)


async def test_gate_survives_restart(bed: Any, namespace: str, tmp_path: Path) -> None:
    kubeconfig = install(bed, namespace)
    tester = LoadTester(kubeconfig=kubeconfig, namespace=namespace, log_path=tmp_path / "lt.log")
    await tester.start()
    canary = {"name": "podinfo", "namespace": namespace, "phase": "Progressing", "checksum": "x"}
    try:
        assert await tester.post("/gate/check", canary) == (403, "Forbidden")
        assert await tester.post("/gate/open", canary) == (202, f"gate podinfo.{namespace} opened")
        assert await tester.post("/rollback/open", canary) == \
            (202, f"rollback rollback.podinfo.{namespace} opened")
        assert open_gates(bed, namespace) == {f"podinfo.{namespace}", f"rollback.podinfo.{namespace}"}
        assert tester.stop() == 0  # SIGTERM: a clean exit
        tester = await tester.start()
        assert await tester.post("/gate/check", canary) == (200, "Approved")
        tester.stop(signal.SIGKILL)  # a crash loses nothing either
        tester = await tester.start()
        assert await tester.post("/rollback/check", canary) == (200, "Approved")
        assert await tester.post("/gate/close", canary) == (202, f"gate podinfo.{namespace} closed")
        assert await tester.post("/gate/check", canary) == (403, "Forbidden")
        assert await tester.post("/rollback/check", canary) == (200, "Approved")
        assert open_gates(bed, namespace) == {f"rollback.podinfo.{namespace}"}
    finally:
        tester.stop()


async def test_concurrent_writers_lose_no_gate(bed: Any, namespace: str, tmp_path: Path) -> None:
    """Two load testers (two replicas) open 30 gates at once: 409s are retried, every gate ends open."""
    kubeconfig = install(bed, namespace)
    testers = [await LoadTester(kubeconfig=kubeconfig, namespace=namespace,
                                log_path=tmp_path / f"lt{i}.log").start() for i in range(2)]
    try:
        names = [f"app{i}" for i in range(30)]
        answers = await asyncio.gather(*(
            testers[i % 2].post("/gate/open", {"name": n, "namespace": namespace})
            for i, n in enumerate(names)))
        assert {a[0] for a in answers} == {202}, answers
        assert open_gates(bed, namespace) == {f"{n}.{namespace}" for n in names}
        for t in testers:
            assert (await t.post("/gate/check", {"name": "app7", "namespace": namespace}))[0] == 200
    finally:
        for t in testers:
            t.stop()


async def test_gates_expire_and_are_capped(bed: Any, namespace: str, tmp_path: Path) -> None:
    """The gate ConfigMap never fills: beyond --max-gates an open answers 507 and writes nothing; an
    expired gate reads closed and the next write removes it."""
    kubeconfig = install(bed, namespace)
    tester = await LoadTester(kubeconfig=kubeconfig, namespace=namespace, log_path=tmp_path / "lt.log",
                              args=("--gate-ttl", "3s", "--max-gates", "3")).start()
    try:
        for name in ("a", "b", "c"):
            assert (await tester.post("/gate/open", {"name": name, "namespace": namespace}))[0] == 202
        code, text = await tester.post("/rollback/open", {"name": "a", "namespace": namespace})
        assert code == 507 and "3 gates are open, the most allowed (--max-gates)" in text, text
        assert open_gates(bed, namespace) == {f"{n}.{namespace}" for n in ("a", "b", "c")}

        async def expired() -> bool:
            answer = await tester.post("/gate/check", {"name": "a", "namespace": namespace})
            return answer == (403, "Forbidden")

        await wait_for(expired, 30, "the gate to expire")
        assert (await tester.post("/rollback/open", {"name": "a", "namespace": namespace}))[0] == 202
        assert open_gates(bed, namespace) == {f"rollback.a.{namespace}"}
    finally:
        tester.stop()


def _podinfo(namespace: str) -> list[dict[str, Any]]:
    labels = {"app": "podinfo"}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "podinfo", "namespace": namespace},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                      {"name": "podinfod", "image": "ghcr.io/stefanprodan/podinfo:6.0.0"}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "podinfo", "namespace": namespace},
         "spec": {"selector": labels, "ports": [{"name": "http", "port": 9898}]}},
    ]


def istio_requests(mesh_url: str, namespace: str, workload: str) -> float:
    """Sum of the simulator's ``istio_requests_total{reporter="destination"}`` for one workload."""
    with urllib.request.urlopen(f"{mesh_url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        if (line.startswith("istio_requests_total{") and 'reporter="destination"' in line
                and f'destination_workload="{workload}"' in line
                and f'destination_workload_namespace="{namespace}"' in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_tutorial_webhook_through_the_mesh(bed: Any, namespace: str, tmp_path: Path) -> None:
    """The tutorial's rollout webhook through the simulator: ``POST http://token:<T>@flagger-loadtester.<ns>/``
    with ``hey -z 5s -q 10 -c 2 http://podinfo.<ns>:9898/`` (the tutorial's 1m shortened to 5s); podinfo's
    Istio request count grows by about 5 s x 10 QPS x 2 workers = 100; without the token the answer is 401;
    a command outside the allow-list is refused with 403 and never runs, as is hey aimed outside the
    cluster."""
    mesh_url = str(bed.mesh_url)
    for obj in _podinfo(namespace):
        bed.apply(obj, namespace)
    kubeconfig = install(bed, namespace)
    proxy = mesh_proxy(mesh_url, namespace)
    assert proxy is not None
    await wait_for(lambda: bed.kubectl("-n", namespace, "get", "deploy", "podinfo", "-o",
                                       "jsonpath={.status.availableReplicas}").stdout == "1",
                   60, "podinfo available")
    tester = await LoadTester(kubeconfig=kubeconfig, namespace=namespace, log_path=tmp_path / "lt.log",
                              proxy=proxy).start()
    try:
        await tester.register(mesh_url)
        async with aiohttp.ClientSession() as s:

            async def webhook(cmd: str, url: str = webhook_url(namespace)) -> tuple[int, str]:
                body = {"name": "podinfo", "namespace": namespace, "phase": "Progressing", "checksum": "x",
                        "metadata": {"type": "cmd", "cmd": cmd}}
                async with s.post(url, json=body, proxy=proxy) as r:
                    return r.status, await r.text()

            victim = tmp_path / "created-by-a-refused-command"
            assert await webhook(f"touch {victim}", f"http://flagger-loadtester.{namespace}/") == \
                (401, "Unauthorized")
            status, text = await webhook(f"touch {victim}")
            assert status == 403 and "'touch' is not allowed" in text, text
            status, text = await webhook("hey -n 1 -c 1 http://169.254.169.254/")
            assert status == 403 and "--allow-external-targets" in text, text

            before = istio_requests(mesh_url, namespace, "podinfo")
            began = asyncio.get_running_loop().time()
            cmd = f"hey -z 5s -q 10 -c 2 http://podinfo.{namespace}:9898/"
            assert await webhook(cmd) == (202, "command started")
            # Flagger calls the rollout hook again on the next tick: still running, so not started twice
            assert await webhook(cmd) == (202, f"command skipped {cmd} is already running")

            def finished() -> bool:
                done = 'canaryd_loadtester_commands_total{result="succeeded",type="cmd"} 1.0'
                return done in tester.metrics()

            await wait_for(finished, 30, "hey to finish")
            took = asyncio.get_running_loop().time() - began
            grew = istio_requests(mesh_url, namespace, "podinfo") - before
            print(f"\nhey -z 5s -q 10 -c 2 through the mesh: {grew:.0f} requests in {took:.1f}s")
            assert 90 <= grew <= 100, grew
            assert 5.0 <= took < 12.0, took
            assert not victim.exists()
            assert 'canaryd_loadtester_commands_total{result="refused",type="cmd"} 2.0' in tester.metrics()
    finally:
        tester.stop()


def test_manifests_pass_server_side_dry_run(bed: Any, namespace: str) -> None:
    """The kustomization and the optional NetworkPolicy validate; the Deployment reads its token from the
    Secret's file, never from the environment."""
    got = bed.kubectl("-n", namespace, "apply", "-k", str(MANIFESTS), "--dry-run=server", check=False)
    assert got.returncode == 0, got.stderr
    for kind in ("serviceaccount", "role.rbac.authorization.k8s.io", "rolebinding.rbac.authorization.k8s.io",
                 "deployment.apps", "service"):
        assert f"{kind}/flagger-loadtester" in got.stdout, got.stdout
    policy = str(MANIFESTS / "networkpolicy.yaml")
    got = bed.kubectl("-n", namespace, "apply", "-f", policy, "--dry-run=server", check=False)
    assert got.returncode == 0 and "networkpolicy.networking.k8s.io/flagger-loadtester" in got.stdout, got
    deployment = yaml.safe_load((MANIFESTS / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["token"]
    assert args[args.index("--token-file") + 1] == f"{mount}/token"
    assert "--insecure" not in args
    assert {v["name"]: v.get("secret", {}).get("secretName") for v in pod["volumes"]}["token"] == \
        "flagger-loadtester-token"
    assert not [e for e in container.get("env", []) if "TOKEN" in e["name"]]
