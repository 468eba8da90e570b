"""The crowded-cluster benchmark (issue 16): what canaryd's start costs on a cluster full of objects no
Canary uses, against the same canaries on an empty cluster.

    python3 -m bench.crowd                       # the issue's figures, both trees given by --tree
    python3 -m bench.crowd --scale 0.2 --tree before=/tmp/crowd-before --tree after=.

One bed of its own (etcd on tmpfs, kwok node; ConfigMaps, Secrets, Deployments and Services without the
API server's watch cache, so a watch resumed after compaction gets a real 410 and the informers list
again). For each canaryd tree (a directory holding a ``canaryd`` package, run as ``python3 -m canaryd``
from there): start canaryd cluster-wide through a byte-counting loopback proxy, time /readyz, wait for
the canaries to be Initialized, read RSS (VmRSS, VmHWM), then force a relist (proxy cut, etcd compacted,
proxy resumed) and read bytes and RSS again. First on the bed with only the canaries, then after the
crowd fill (namespaces with Deployments at ``replicas: 0`` and their ReplicaSets, ConfigMaps, Secrets of
which some are Helm-release-sized). Writes ``<out>/<date>-crowd.json`` and ``.md``."""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import random
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import procstat, workload
from bench.workload import Shape
from canaryd.kube.client import KubeClient
from canaryd.kube.errors import Conflict
from canaryd.kube.resources import CANARY, CONFIGMAP, DEPLOYMENT, SECRET
from e2e.bed import Bed
from e2e.operator import free_port, install_rbac
from e2e.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[1]
UNCACHED = ("configmaps", "secrets", "deployments", "services")
CANARY_NS_PREFIX = "crowd-canary"


@dataclass(frozen=True)
class Crowd:
    """What the fill puts on the bed (the issue's figures at scale 1)."""

    namespaces: int = 200
    deployments: int = 5000
    configmaps: int = 20000
    secrets: int = 5000
    helm_secrets: int = 1000  # of ``secrets``, 100-300 KB each

    def scaled(self, factor: float) -> Crowd:
        def s(n: int) -> int:
            return max(1, round(n * factor))
        return Crowd(s(self.namespaces), s(self.deployments), s(self.configmaps), s(self.secrets),
                     s(self.helm_secrets))


@dataclass
class Measure:
    tree: str
    bed: str  # "empty" | "crowded"
    ready_s: float = 0.0
    initialized_s: float = 0.0
    bytes_to_ready: int = 0
    bytes_to_settled: int = 0
    rss_settled_mib: float = 0.0
    peak_rss_mib: float = 0.0
    relist_bytes: int = 0
    rss_after_relist_mib: float = 0.0
    peak_rss_after_relist_mib: float = 0.0
    relisted: list[str] = field(default_factory=list)
    cache_objects: dict[str, float] = field(default_factory=dict)


async def bounded(makers: Iterable[Callable[[], Awaitable[Any]]], limit: int = 24) -> None:
    sem = asyncio.Semaphore(limit)

    async def one(make: Callable[[], Awaitable[Any]]) -> None:
        async with sem:
            for attempt in range(5):
                try:
                    await make()
                    return
                except Conflict:
                    return  # already there (a re-run)
                except Exception:
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.5 * (attempt + 1))

    await asyncio.gather(*(one(m) for m in makers))


def helm_secret(ns: str, i: int, size: int) -> dict[str, Any]:
    """A Helm release Secret: gzip'd protobuf-ish payload, base64 twice as Helm stores it (incompressible)."""
    payload = base64.b64encode(random.randbytes(size * 3 // 4 // 4 * 3)).decode()
    name = f"rel-{i:04d}"
    return {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": f"sh.helm.release.v1.{name}.v1", "namespace": ns,
                         "labels": {"owner": "helm", "name": name, "status": "deployed", "version": "1"}},
            "data": {"release": base64.b64encode(payload.encode()).decode()}}


def filler_deployment(ns: str, i: int) -> dict[str, Any]:
    obj = workload.deployment(ns, f"filler-{i:04d}")
    obj["spec"]["replicas"] = 0
    obj["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": f"SETTING_{k}", "value": f"value-{k}-{i}"} for k in range(10)]
    return obj


async def fill(client: KubeClient, crowd: Crowd, log: Callable[[str], None]) -> dict[str, float]:
    """Namespaces, then Deployments, ConfigMaps and Secrets spread over them; returns seconds per part."""
    t0 = time.monotonic()
    spaces = [f"crowd-{i:03d}" for i in range(crowd.namespaces)]
    await bounded(lambda ns=ns: workload.create_namespace(client, ns) for ns in spaces)
    times = {"namespaces": time.monotonic() - t0}
    t = time.monotonic()
    await bounded(lambda i=i: client.create(DEPLOYMENT, spaces[i % len(spaces)],
                                            filler_deployment(spaces[i % len(spaces)], i))
                  for i in range(crowd.deployments))
    times["deployments"] = time.monotonic() - t
    log(f"deployments done in {times['deployments']:.0f}s")
    t = time.monotonic()

    def configmap(i: int) -> dict[str, Any]:
        ns = spaces[i % len(spaces)]
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i:05d}", "namespace": ns},
                "data": {f"key{k}": f"value {k} of configmap {i} " * 8 for k in range(6)}}

    await bounded(lambda i=i: client.create(CONFIGMAP, spaces[i % len(spaces)], configmap(i))
                  for i in range(crowd.configmaps))
    times["configmaps"] = time.monotonic() - t
    log(f"configmaps done in {times['configmaps']:.0f}s")
    t = time.monotonic()

    def secret(i: int) -> dict[str, Any]:
        ns = spaces[i % len(spaces)]
        if i < crowd.helm_secrets:
            return helm_secret(ns, i, random.randint(100_000, 300_000))
        return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": f"secret-{i:05d}", "namespace": ns},
                "data": {"password": base64.b64encode(random.randbytes(24)).decode()}}

    await bounded((lambda i=i: client.create(SECRET, spaces[i % len(spaces)], secret(i))
                   for i in range(crowd.secrets)), limit=8)
    times["secrets"] = time.monotonic() - t
    log(f"secrets done in {times['secrets']:.0f}s")
    times["total"] = time.monotonic() - t0
    return times


async def canaries(client: KubeClient, count: int, prometheus: str) -> list[str]:
    """``count`` namespaces with one Canary each; each target uses a ConfigMap and a Secret (tracked)."""
    spaces = [f"{CANARY_NS_PREFIX}-{i:02d}" for i in range(count)]
    shape = Shape(interval=60)

    async def one(ns: str) -> None:
        await workload.create_namespace(client, ns)
        await client.create(CONFIGMAP, ns, {"metadata": {"name": "app-config"}, "data": {"mode": "a"}})
        await client.create(SECRET, ns, {"metadata": {"name": "app-secret"},
                                          "data": {"token": base64.b64encode(b"t").decode()}})
        await client.create(workload.METRIC_TEMPLATE, ns, workload.metric_template(ns, prometheus))
        dep = workload.deployment(ns, "app-0000")
        dep["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
            {"configMapRef": {"name": "app-config"}}, {"secretRef": {"name": "app-secret"}}]
        await client.create(DEPLOYMENT, ns, dep)
        await client.create(CANARY, ns, workload.canary(ns, "app-0000", shape))

    await bounded(lambda ns=ns: one(ns) for ns in spaces)
    return spaces


async def initialized(client: KubeClient, spaces: list[str]) -> bool:
    for ns in spaces:
        got = await client.get(CANARY, ns, "app-0000")
        if (got.get("status") or {}).get("phase") not in ("Initialized", "Succeeded"):
            return False
    return True


def metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def sample(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of one metric family in a Prometheus text page."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            head, _, value = line.rpartition(" ")
            out[head[len(name):]] = float(value)
    return out


async def until(pred: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:  # noqa: ASYNC109
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if await pred():
            return time.monotonic() - t0
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{what} not within {timeout:g}s")


def _spawn(cmd: list[str], log: Path, cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as logf:
        return subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=cwd, env=env)


def _du_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1024 / 1024


async def measure(bed: Bed, tree: Path, label: str, kubeconfig: str, spaces: list[str],
                  admin: KubeClient, log_dir: Path, bed_label: str) -> Measure:
    api = urlsplit(str(bed.api_url))
    proxy = TcpProxy(str(api.hostname), int(api.port or 443))
    await proxy.start()
    port = free_port()
    cmd = [sys.executable, "-m", "canaryd", "run", "--kubeconfig", kubeconfig,
           "--master", f"https://127.0.0.1:{proxy.listen_port}", "--metrics-server", str(bed.prometheus_url),
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "info", "--user-agent",
           f"canaryd/crowd-{label}"]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    out = log_dir / f"canaryd-{label}-{bed_label}.log"
    m = Measure(tree=label, bed=bed_label)
    proc = await asyncio.to_thread(_spawn, cmd, out, tree, env)
    try:
        async def is_ready() -> bool:
            if proc.poll() is not None:
                tail = (await asyncio.to_thread(out.read_text)).splitlines()[-5:]
                raise RuntimeError(f"canaryd exited {proc.returncode}: " + "\n".join(tail))
            return await asyncio.to_thread(ready, port)

        m.ready_s = round(await until(is_ready, 600, "ready"), 2)
        m.bytes_to_ready = proxy.down_bytes
        m.initialized_s = round(m.ready_s + await until(lambda: initialized(admin, spaces), 600,
                                                        "canaries Initialized"), 2)
        await asyncio.sleep(5)  # settle: the Initialized status writes' echoes
        m.bytes_to_settled = proxy.down_bytes
        m.rss_settled_mib = round(procstat.rss_mib(proc.pid), 1)
        m.peak_rss_mib = round(procstat.peak_rss_mib(proc.pid), 1)
        text = await asyncio.to_thread(metrics_text, port)
        m.cache_objects = sample(text, "canaryd_cache_objects")
        before = sample(text, "canaryd_watch_restarts_total")
        # a forced relist: every connection cut, etcd compacted meanwhile, watches resume → 410 → list
        start_bytes = proxy.down_bytes
        proxy.cut()
        await asyncio.to_thread(bed.compact_etcd)
        await asyncio.sleep(1)
        proxy.refusing = False

        async def relisted() -> bool:
            now = sample(await asyncio.to_thread(metrics_text, port), "canaryd_watch_restarts_total")
            gone = [k for k, v in now.items() if 'reason="gone"' in k and v > before.get(k, 0.0)]
            m.relisted = sorted(gone)
            return any("secrets" in k for k in gone) and await asyncio.to_thread(ready, port)

        await until(relisted, 300, "relist of secrets")

        last = [-1]

        async def quiet() -> bool:
            await asyncio.sleep(5)  # until the relists' bytes stop coming
            done, last[0] = proxy.down_bytes == last[0], proxy.down_bytes
            return done

        await until(quiet, 600, "the relist's end")
        m.relist_bytes = proxy.down_bytes - start_bytes
        m.rss_after_relist_mib = round(procstat.rss_mib(proc.pid), 1)
        m.peak_rss_after_relist_mib = round(procstat.peak_rss_mib(proc.pid), 1)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        await proxy.close()
    return m


async def reset_canaries(admin: KubeClient, spaces: list[str]) -> None:
    """Status cleared between trees, so each tree initializes the canaries itself."""
    for ns in spaces:
        for attempt in range(5):
            got = await admin.get(CANARY, ns, "app-0000")
            body = {"metadata": {"resourceVersion": got["metadata"]["resourceVersion"]}, "status": None}
            try:
                await admin.patch(CANARY, ns, "app-0000", body, subresource="status")
                break
            except Conflict:
                if attempt == 4:
                    raise


def render(results: list[Measure], crowd: Crowd, scale: float, fill_times: dict[str, float],
           etcd_mib: float, count: int) -> str:
    rows = ["| tree | bed | ready s | Initialized s | MiB received to ready | to settled | RSS settled MiB "
            "| peak RSS MiB | relist MiB received | RSS after relist MiB | peak after relist MiB |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    mib = 1024 * 1024
    for m in results:
        rows.append(f"| {m.tree} | {m.bed} | {m.ready_s} | {m.initialized_s} "
                    f"| {m.bytes_to_ready / mib:.2f} | {m.bytes_to_settled / mib:.2f} | {m.rss_settled_mib} "
                    f"| {m.peak_rss_mib} | {m.relist_bytes / mib:.2f} | {m.rss_after_relist_mib} "
                    f"| {m.peak_rss_after_relist_mib} |")
    fill = ", ".join(f"{k} {v:.0f} s" for k, v in fill_times.items())
    return "\n".join([
        f"# Crowded cluster ({dt.date.today().isoformat()})", "",
        f"Scale {scale:g} of the issue's crowd: {crowd.namespaces} namespaces, {crowd.deployments} "
        f"Deployments at replicas 0 (with their ReplicaSets), {crowd.configmaps} ConfigMaps, {crowd.secrets} "
        f"Secrets of which {crowd.helm_secrets} are Helm-release-sized (100-300 KB); etcd holds "
        f"{etcd_mib:.0f} MiB after the fill ({fill}). {count} canaries in {count} namespaces, each target "
        "using one ConfigMap and one Secret.",
        "", *rows, ""])


async def main_async(args: argparse.Namespace) -> int:
    crowd = Crowd().scaled(args.scale)
    trees: list[tuple[str, Path]] = args.trees
    out = Path(args.out)
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    stamp = args.date or dt.date.today().isoformat()

    def log(msg: str) -> None:
        print(f"[crowd {time.strftime('%H:%M:%S')}] {msg}", flush=True)

    bed = await asyncio.to_thread(lambda: Bed.temporary(mesh=False, prometheus=True, uncached=UNCACHED))
    results: list[Measure] = []
    try:
        kubeconfig = await asyncio.to_thread(install_rbac, bed)
        admin = await bed.admin_client(user_agent="canaryd-bench-crowd")
        log_dir = Path(bed.dir) / "crowd-logs"
        log_dir.mkdir(exist_ok=True)
        try:
            spaces = await canaries(admin, args.canaries, str(bed.prometheus_url))
            for bed_label in ("empty", "crowded"):
                if bed_label == "crowded":
                    log(f"filling {crowd}")
                    fill_times = await fill(admin, crowd, log)
                    await asyncio.sleep(20)  # the ReplicaSets of the fillers
                for label, tree in trees:
                    await reset_canaries(admin, spaces)
                    log(f"measuring {label} on the {bed_label} bed")
                    m = await measure(bed, tree, label, kubeconfig, spaces, admin, log_dir, bed_label)
                    log(json.dumps(asdict(m)))
                    results.append(m)
            etcd_mib = await asyncio.to_thread(_du_mib, Path(bed.state["etcd_data"]))
        finally:
            await admin.close()
    finally:
        await asyncio.to_thread(bed.down, keep_logs=False)
    doc = render(results, crowd, args.scale, fill_times, etcd_mib, args.canaries)
    (out / f"{stamp}-crowd.json").write_text(json.dumps(
        {"scale": args.scale, "crowd": asdict(crowd), "fill_seconds": fill_times,
         "results": [asdict(m) for m in results]}, indent=1))
    (out / f"{stamp}-crowd-table.md").write_text(doc)
    print(doc)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m bench.crowd", description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=1.0, help="multiplies the issue's crowd figures")
    p.add_argument("--canaries", type=int, default=20, help="canaries, one per namespace")
    p.add_argument("--tree", action="append", default=[],
                   help="LABEL=DIR: a directory holding the canaryd package to run (repeatable; default "
                        "this checkout)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--date", help="the results' file name date (default today)")
    args = p.parse_args(argv)
    args.trees = [(label, Path(path).resolve()) for label, path in
                  (t.split("=", 1) for t in args.tree or [f"canaryd={ROOT}"])]
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
