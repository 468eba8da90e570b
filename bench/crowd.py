"""The crowded-cluster benchmark (issue 16): what an operator's start, relist and steps cost on a cluster
full of objects no Canary uses, against the same canaries on an empty cluster — canaryd and Flagger alike.

    python3 -m bench --crowd 1                   # with the side-by-side runs, in one invocation
    python3 -m bench.crowd                       # alone: this checkout's canaryd and Flagger v1.44.0
    python3 -m bench.crowd --scale 0.2 --tree before=/tmp/crowd-before --tree after=. --no-flagger

One bed of its own (etcd on tmpfs, kwok node; ConfigMaps, Secrets, Deployments and Services without
the API server's watch cache, so a watch resumed after compaction gets a real 410 and the
informers list again). For each operator, first on the bed with only its canaries, then after the crowd
fill (bench/crowd_fill.py): its canaries created in namespaces of their own, the operator started
cluster-wide through a byte-counting loopback proxy; ready, all canaries Initialized, RSS, the API
server's CPU and memory over that start; a forced relist (proxy cut, etcd compacted, proxy resumed) with
its bytes and RSS; then one release of every canary, with the operator's CPU, requests and bytes per step.
Writes ``<out>/<date>-crowd.json`` and ``<date>-crowd-table.md``."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench import apicost, procstat, workload
from bench.crowd_fill import Crowd, bounded, fill
from bench.crowd_subjects import CanarydTree, FlaggerSubject, Subject
from bench.workload import Shape
from canaryd.kube.client import KubeClient
from canaryd.kube.resources import CANARY, CONFIGMAP, DEPLOYMENT, METRIC_TEMPLATE, SECRET
from e2e.bed import Bed
from e2e.operator import install_rbac
from e2e.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[1]
# resource[.group]: a bare "deployments" matches nothing (its group is apps). Custom resources stay cached
# whatever this says (tried with the Flagger kinds: no 410 for a Canary watch after compaction)
UNCACHED = ("configmaps", "secrets", "deployments.apps", "services")
APP = "app-0000"


@dataclass
class Measure:
    operator: str
    bed: str  # "empty" | "crowded"
    canaries: int = 0
    ready_s: float = 0.0
    initialized_s: float = 0.0
    bytes_to_ready: int = 0
    bytes_to_settled: int = 0
    rss_settled_mib: float = 0.0
    peak_rss_mib: float = 0.0
    apiserver_cpu_start_s: float = 0.0  # the API server's CPU from the operator's start to settled
    apiserver_rss_before_mib: float = 0.0
    apiserver_rss_peak_mib: float = 0.0  # the highest sample (every 0.25 s) over the start
    relist_bytes: int = 0
    rss_after_relist_mib: float = 0.0
    peak_rss_after_relist_mib: float = 0.0
    relisted: list[str] = field(default_factory=list)
    cache_objects: dict[str, float] = field(default_factory=dict)
    steps: int = 0  # canary steps of the release (canaries × weight steps)
    succeeded: int = 0
    release_s: float = 0.0
    cpu_ms_per_step: float = 0.0
    reads_per_step: float = 0.0
    writes_per_step: float = 0.0
    kib_per_step: float = 0.0
    notes: list[str] = field(default_factory=list)


def namespaces(operator: str, bed_label: str, count: int) -> list[str]:
    return [f"cc-{operator}-{bed_label}-{i:02d}" for i in range(count)]


async def create_canaries(client: KubeClient, spaces: list[str], prometheus: str, shape: Shape) -> None:
    """One Canary per namespace; each target uses a ConfigMap and a Secret (tracked)."""
    async def one(ns: str) -> None:
        await workload.create_namespace(client, ns)
        await client.create(CONFIGMAP, ns, {"metadata": {"name": "app-config"}, "data": {"mode": "a"}})
        await client.create(SECRET, ns, {"metadata": {"name": "app-secret"},
                                          "data": {"token": base64.b64encode(b"t").decode()}})
        await client.create(METRIC_TEMPLATE, ns, workload.metric_template(ns, prometheus))
        dep = workload.deployment(ns, APP)
        dep["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
            {"configMapRef": {"name": "app-config"}}, {"secretRef": {"name": "app-secret"}}]
        await client.create(DEPLOYMENT, ns, dep)
        await client.create(CANARY, ns, workload.canary(ns, APP, shape))

    await bounded(lambda ns=ns: one(ns) for ns in spaces)


async def remove_canaries(client: KubeClient, spaces: list[str], timeout: float = 300.0) -> bool:  # noqa: ASYNC109
    await bounded(lambda ns=ns: workload.delete_namespace(client, ns) for ns in spaces)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all([await workload.namespace_gone(client, ns) for ns in spaces]):
            return True
        await asyncio.sleep(1.0)
    return False


async def phases(client: KubeClient, spaces: list[str]) -> dict[str, str]:
    """Each of these namespaces' Canary phase, from one cluster-wide list (cheap to poll)."""
    items, _ = await client.list(CANARY)
    wanted = set(spaces)
    return {c["metadata"]["namespace"]: str((c.get("status") or {}).get("phase", ""))
            for c in items if c["metadata"]["namespace"] in wanted}


def sample(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of one metric family in a Prometheus text page."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            head, _, value = line.rpartition(" ")
            out[head[len(name):]] = float(value)
    return out


async def until(pred: Callable[[], Awaitable[bool]], timeout: float, what: str,  # noqa: ASYNC109
                poll: float = 0.1) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if await pred():
            return time.monotonic() - t0
        await asyncio.sleep(poll)
    raise TimeoutError(f"{what} not within {timeout:g}s")


def _du_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1024 / 1024


class PeakRss:
    """Samples a process's RSS every 0.25 s while running (VmHWM is over its whole life, not one start)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.peak = procstat.rss_mib(pid) if pid else 0.0
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while self.pid:
            self.peak = max(self.peak, procstat.rss_mib(self.pid))
            await asyncio.sleep(0.25)

    def __enter__(self) -> PeakRss:
        self._task = asyncio.get_running_loop().create_task(self._loop())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()


async def quiet_bytes(proxy: TcpProxy, what: str) -> None:
    """Until no byte came from the API server for 5 s."""
    last = [-1]

    async def quiet() -> bool:
        await asyncio.sleep(5)
        done, last[0] = proxy.down_bytes == last[0], proxy.down_bytes
        return done

    await until(quiet, 600, what)


class Session:
    """One operator measured on one bed state: its canaries exist only during its measurement (a second
    operator's would be taken on by a cluster-wide first)."""

    def __init__(self, bed: Bed, admin: KubeClient, subject: Subject, bed_label: str, count: int,
                 shape: Shape, log_dir: Path) -> None:
        self.bed, self.admin, self.subject, self.shape = bed, admin, subject, shape
        self.spaces = namespaces(subject.label, bed_label[0], count)
        self.m = Measure(operator=subject.label, bed=bed_label, canaries=count)
        self.log_dir = log_dir
        api = urlsplit(str(bed.api_url))
        self.proxy = TcpProxy(str(api.hostname), int(api.port or 443))
        self.api_pid = bed.procs.pids().get("apiserver")

    def _check_alive(self) -> None:
        if not self.subject.alive():
            raise RuntimeError(f"{self.subject.label} exited:\n{self.subject.log_tail()}")

    async def run(self) -> Measure:
        await create_canaries(self.admin, self.spaces, str(self.bed.prometheus_url), self.shape)
        await self.proxy.start()
        try:
            settled = await self._start()
            await self._relist(settled)
            await self._release()
        finally:
            if not await remove_canaries(self.admin, self.spaces):
                self.m.notes.append("canary namespaces still terminating after 300 s")
            await asyncio.to_thread(self.subject.stop)
            await self.proxy.close()
        return self.m

    async def _start(self) -> str | None:
        """Start to settled; returns the operator's metrics page at settle (None: it has none)."""
        m, subject = self.m, self.subject
        api0 = procstat.cpu_seconds(self.api_pid) if self.api_pid else 0.0
        with PeakRss(self.api_pid) as api_rss:
            m.apiserver_rss_before_mib = round(api_rss.peak, 1)
            subject.start(f"https://127.0.0.1:{self.proxy.listen_port}", self.log_dir, f"{m.bed}")

            async def is_ready() -> bool:
                self._check_alive()
                return await asyncio.to_thread(subject.ready)

            m.ready_s = round(await until(is_ready, 600, "ready"), 2)
            m.bytes_to_ready = self.proxy.down_bytes

            async def initialized() -> bool:
                self._check_alive()
                got = await phases(self.admin, self.spaces)
                return len(got) == len(self.spaces) and all(p == "Initialized" for p in got.values())

            m.initialized_s = round(m.ready_s + await until(initialized, 600, "canaries Initialized", 0.5), 2)
            await asyncio.sleep(5)  # settle: the Initialized status writes' echoes
        m.apiserver_cpu_start_s = round(procstat.cpu_seconds(self.api_pid) - api0, 2) if self.api_pid else 0.0
        m.apiserver_rss_peak_mib = round(api_rss.peak, 1)
        m.bytes_to_settled = self.proxy.down_bytes
        m.rss_settled_mib = round(procstat.rss_mib(subject.pid), 1)
        m.peak_rss_mib = round(procstat.peak_rss_mib(subject.pid), 1)
        text = await asyncio.to_thread(subject.metrics_text)
        if text is not None:
            m.cache_objects = sample(text, "canaryd_cache_objects")
        return text

    async def _relist(self, text: str | None) -> None:
        """Every connection cut, etcd compacted meanwhile, watches resume → 410 → list; ``text``: the
        operator's metrics page before it (the watch restarts counted from there)."""
        m, subject = self.m, self.subject
        before = sample(text, "canaryd_watch_restarts_total") if text is not None else {}
        start_bytes = self.proxy.down_bytes
        self.proxy.cut()
        await asyncio.to_thread(self.bed.compact_etcd)
        await asyncio.sleep(1)
        self.proxy.resume()
        if text is not None:
            async def relisted() -> bool:
                now_text = await asyncio.to_thread(subject.metrics_text)
                now = sample(now_text or "", "canaryd_watch_restarts_total")
                m.relisted = sorted(k for k, v in now.items()
                                    if 'reason="gone"' in k and v > before.get(k, 0.0))
                return any("secrets" in k for k in m.relisted) and await asyncio.to_thread(subject.ready)

            await until(relisted, 300, "relist of secrets")
        await quiet_bytes(self.proxy, "the relist's end")
        self._check_alive()
        m.relist_bytes = self.proxy.down_bytes - start_bytes
        m.rss_after_relist_mib = round(procstat.rss_mib(subject.pid), 1)
        m.peak_rss_after_relist_mib = round(procstat.peak_rss_mib(subject.pid), 1)

    async def _release(self) -> None:
        """A new revision for every canary, to Succeeded: the operator's CPU, requests and bytes per step."""
        m, subject = self.m, self.subject
        audit = self.bed.audit_log
        a0, c0, b0, t0 = apicost.offset(audit), procstat.cpu_seconds(subject.pid), self.proxy.down_bytes, \
            time.monotonic()
        await bounded(lambda ns=ns: workload.trigger(self.admin, ns, APP, "crowd-r1") for ns in self.spaces)

        async def done() -> bool:
            self._check_alive()
            got = await phases(self.admin, self.spaces)
            m.succeeded = sum(p == "Succeeded" for p in got.values())
            return all(p in ("Succeeded", "Failed") for p in got.values()) and len(got) == len(self.spaces)

        cap = (self.shape.steps + 6) * self.shape.interval + 120
        try:
            await until(done, cap, "the release", 0.5)
        except TimeoutError as err:
            m.notes.append(str(err))
        m.release_s = round(time.monotonic() - t0, 1)
        cpu = procstat.cpu_seconds(subject.pid) - c0
        await asyncio.sleep(1)  # the audit log's last lines
        cost = apicost.count(audit, a0, apicost.offset(audit), subject.who())
        m.steps = len(self.spaces) * self.shape.steps
        m.cpu_ms_per_step = round(cpu * 1000 / m.steps, 1)
        m.reads_per_step, m.writes_per_step = (round(x, 2) for x in cost.per(m.steps))
        m.kib_per_step = round((self.proxy.down_bytes - b0) / 1024 / m.steps, 1)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "–"


READING = [
    "How to read it:",
    "- ready: canaryd's `/readyz` (its caches synced); Flagger's `/healthz`, which it serves before its "
    "informer has synced. Initialized (all canaries) is the figure both share.",
    "- bytes: what the API server sent through the loopback proxy (after its gzip), from the operator's "
    "start; settled = 5 s after the last canary was Initialized.",
    "- the API server's CPU and RSS over the start run from the operator's start to settled; its RSS "
    "carries what earlier measurements left (on a fresh API server it only grows), so the rise, not the "
    "level, is the operator's.",
    "- relist: every connection cut, etcd compacted, connections allowed again; the kinds canaryd listed "
    "again (410) are in the JSON. The API server keeps custom resources in its watch cache (taking the "
    "Flagger kinds out with `--watch-cache-sizes` was tried: no Canary watch was answered 410), so Flagger's "
    "one watch resumed without a list, and its relist bytes are mostly its per-tick GETs while the "
    "benchmark waits for 5 s without a byte.",
    "- release: one new revision for every canary, to Succeeded; CPU, requests (audit log) and bytes over "
    "it, divided by canaries × weight steps.",
    ""]


def render(results: list[Measure], crowd: Crowd, scale: float, fill_times: dict[str, float],
           etcd_mib: float, count: int, interval: int) -> str:
    """The report: one row per operator and bed, then each operator's crowded/empty ratios (the target:
    start time, RSS and bytes within 1.5× of the empty bed)."""
    mib = 1024 * 1024
    head = ["operator", "bed", "ready s", "Initialized s", "MiB received to ready / settled",
            "RSS settled / peak MiB", "API server CPU s over the start", "API server RSS before → peak MiB",
            "relist: MiB received, RSS after, peak MiB",
            "release: CPU ms / reads / writes / KiB per canary step", "Succeeded"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in results:
        cells = [m.operator, m.bed, m.ready_s, m.initialized_s,
                 f"{m.bytes_to_ready / mib:.2f} / {m.bytes_to_settled / mib:.2f}",
                 f"{m.rss_settled_mib} / {m.peak_rss_mib}", m.apiserver_cpu_start_s,
                 f"{m.apiserver_rss_before_mib} → {m.apiserver_rss_peak_mib}",
                 f"{m.relist_bytes / mib:.2f}, {m.rss_after_relist_mib}, {m.peak_rss_after_relist_mib}",
                 f"{m.cpu_ms_per_step} / {m.reads_per_step} / {m.writes_per_step} / {m.kib_per_step}",
                 f"{m.succeeded}/{m.canaries}"]
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    ratios = ["| operator | Initialized | MiB to settled | RSS settled | peak RSS after relist | "
              "relist MiB | API server CPU over the start |", "|---|---|---|---|---|---|---|"]
    by = {(m.operator, m.bed): m for m in results}
    for op in dict.fromkeys(m.operator for m in results):
        e, c = by.get((op, "empty")), by.get((op, "crowded"))
        if e is None or c is None:
            continue
        ratio_cells = [ratio(c.initialized_s, e.initialized_s), ratio(c.bytes_to_settled, e.bytes_to_settled),
                       ratio(c.rss_settled_mib, e.rss_settled_mib),
                       ratio(c.peak_rss_after_relist_mib, e.rss_settled_mib),
                       ratio(c.relist_bytes, e.relist_bytes),
                       ratio(c.apiserver_cpu_start_s, e.apiserver_cpu_start_s)]
        ratios.append(f"| {op} | " + " | ".join(ratio_cells) + " |")
    notes = [f"- {m.operator} on the {m.bed} bed: {n}" for m in results for n in m.notes]
    fill = ", ".join(f"{k} {v:.0f} s" for k, v in fill_times.items())
    return "\n".join([
        f"## Crowded cluster ({dt.date.today().isoformat()})", "",
        f"Scale {scale:g} of the issue's crowd: {crowd.namespaces} namespaces, {crowd.deployments} "
        f"Deployments at replicas 0 (with their ReplicaSets), {crowd.configmaps} ConfigMaps, {crowd.secrets} "
        f"Secrets of which {crowd.helm_secrets} are Helm-release-sized (100-300 KB); etcd holds "
        f"{etcd_mib:.0f} MiB after the fill ({fill}). Per operator {count} canaries in {count} namespaces of "
        f"their own, each target using one ConfigMap and one Secret; analysis interval {interval} s.", "",
        *rows, "", "Crowded bed ÷ empty bed, per operator (target for canaryd: ≤ 1.5×):", "", *ratios, "",
        *READING, *notes, ""])


async def measure_all(subjects: list[Subject], crowd: Crowd, *, count: int, interval: int,
                      log: Callable[[str], None], bed: Bed) -> tuple[list[Measure], dict[str, float], float]:
    """Every subject on the empty bed, the fill, every subject on the crowded bed."""
    results: list[Measure] = []
    fill_times: dict[str, float] = {}
    admin = await bed.admin_client(user_agent="canaryd-bench-crowd")
    log_dir = Path(bed.dir) / "crowd-logs"
    log_dir.mkdir(exist_ok=True)
    try:
        for bed_label in ("empty", "crowded"):
            if bed_label == "crowded":
                log(f"filling {crowd}")
                fill_times = await fill(admin, crowd, log)
                await asyncio.sleep(20)  # the ReplicaSets of the fillers
            for subject in subjects:
                log(f"measuring {subject.label} on the {bed_label} bed")
                session = Session(bed, admin, subject, bed_label, count, Shape(interval=interval), log_dir)
                m = await session.run()
                log(json.dumps(asdict(m)))
                results.append(m)
        etcd_mib = await asyncio.to_thread(_du_mib, Path(bed.state["etcd_data"]))
    finally:
        await admin.close()
    return results, fill_times, etcd_mib


def subjects_for(bed: Bed, trees: list[tuple[str, Path]], flagger: bool) -> list[Subject]:
    kubeconfig = install_rbac(bed)
    prometheus = str(bed.prometheus_url)
    out: list[Subject] = [CanarydTree(label, tree, kubeconfig, prometheus) for label, tree in trees]
    if flagger:
        out.append(FlaggerSubject(bed))
    return out


def run(out: Path, stamp: str, *, scale: float, trees: list[tuple[str, Path]], flagger: bool,
        count: int = 20, interval: int = 10) -> tuple[str, list[Measure]]:
    """The whole benchmark on a bed of its own; writes the JSON and the table, returns the table."""
    crowd = Crowd().scaled(scale)

    def log(msg: str) -> None:
        print(f"[crowd {time.strftime('%H:%M:%S')}] {msg}", flush=True)

    out.mkdir(parents=True, exist_ok=True)
    bed = Bed.temporary(mesh=False, prometheus=True, uncached=UNCACHED)
    try:
        subjects = subjects_for(bed, trees, flagger)
        results, fill_times, etcd_mib = asyncio.run(
            measure_all(subjects, crowd, count=count, interval=interval, log=log, bed=bed))
    finally:
        with contextlib.suppress(Exception):
            bed.down(keep_logs=False)
    doc = render(results, crowd, scale, fill_times, etcd_mib, count, interval)
    (out / f"{stamp}-crowd.json").write_text(json.dumps(
        {"scale": scale, "crowd": asdict(crowd), "interval": interval, "fill_seconds": fill_times,
         "etcd_mib": etcd_mib, "results": [asdict(m) for m in results]}, indent=1))
    (out / f"{stamp}-crowd-table.md").write_text(doc)
    return doc, results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m bench.crowd", description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=1.0, help="multiplies the issue's crowd figures")
    p.add_argument("--canaries", type=int, default=20, help="canaries per operator, one per namespace")
    p.add_argument("--interval", type=int, default=10, help="the canaries' analysis interval, seconds")
    p.add_argument("--tree", action="append", default=[],
                   help="LABEL=DIR: a directory holding the canaryd package to run (repeatable; default "
                        "this checkout as 'canaryd')")
    p.add_argument("--no-flagger", action="store_true", help="measure canaryd tree(s) only")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--date", help="the results' file name date (default today)")
    args = p.parse_args(argv)
    trees = [(label, Path(path).resolve()) for label, path in
             (t.split("=", 1) for t in args.tree or [f"canaryd={ROOT}"])]
    doc, _ = run(Path(args.out), args.date or dt.date.today().isoformat(), scale=args.scale, trees=trees,
                 flagger=not args.no_flagger, count=args.canaries, interval=args.interval)
    print(doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
