"""The soak benchmark (issue 17): does canaryd stay flat over thousands of runs? On demand, not in CI.

    python3 -m bench --soak                                     # 50 canaries, a revision each 20 s, 60 min
    python3 -m bench --soak --canaries 20 --minutes 20 --interval 1
    python3 -m bench --soak --smoke                             # 3 canaries, 2 min

canaryd runs on a bed of its own (Prometheus is restarted half-way) with allocation tracing on; every
``--sample-every`` seconds the process's RSS, fds and threads (/proc) and its own sizes (/metrics: heap
blocks, asyncio tasks, cache objects, Event aggregation entries, series) are sampled; tracemalloc snapshots
at the end of warm-up and at the end are diffed. Writes ``<out>/<date>-soak.json``, ``.md`` and ``.png``
(``-soak-smoke`` for the smoke size)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import shlex
import signal
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import report, soak_report, soak_sample, soak_workload, workload
from bench.observe import Observer, Timelines
from canaryd.runtime.heapdump import ENV_DIR, ENV_FRAMES
from e2e.bed import Bed
from e2e.operator import Operator, install_rbac, wait_ready

log = logging.getLogger("bench.soak")
ROOT = Path(__file__).resolve().parents[1]
AGENT = "canaryd-bench"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m bench --soak", description=__doc__.splitlines()[0])
    p.add_argument("--soak", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--canaries", "-n", type=int, default=50)
    p.add_argument("--period", type=int, default=20, help="seconds between a canary's revisions")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--interval", type=int, default=1,
                   help="analysis interval, seconds (a run takes about 3: keep it well under the period)")
    p.add_argument("--sample-every", type=float, default=30.0, help="seconds")
    p.add_argument("--warmup-minutes", type=float, help="default: a quarter of --minutes")
    p.add_argument("--tracemalloc-frames", type=int, default=5, help="0: no allocation tracing")
    p.add_argument("--prometheus-down", type=float, default=15.0,
                   help="seconds Prometheus stays stopped half-way (0: no restart)")
    p.add_argument("--heap-trim-interval", metavar="DURATION",
                   help="canaryd's --heap-trim-interval (default: canaryd's own, 60s; 0: never trim)")
    p.add_argument("--tag", default="", help="appended to the results' name: <date>-soak-<tag>")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--report-only", metavar="JSON", help="rewrite the Markdown and plot from a soak's JSON")
    p.add_argument("--smoke", action="store_true", help="3 canaries, 2 minutes, a sample each 10 s")
    args = p.parse_args(argv)
    if args.smoke:
        args.canaries, args.minutes, args.sample_every = 3, 2.0, 10.0
    if args.warmup_minutes is None:
        args.warmup_minutes = args.minutes / 4
    return args


def outcomes(tl: Timelines) -> tuple[int, int]:
    """(promoted, rolled back): moves into Succeeded / Failed in the watch, invalid Canaries left out."""
    done = [0, 0]
    for name, rows in tl.status.items():
        if name.startswith("invalid-"):
            continue
        prev = ""
        for _, phase, _ in rows:
            if phase != prev and phase in ("Succeeded", "Failed"):
                done[phase == "Failed"] += 1
            prev = phase
    return done[0], done[1]


def live_names(observer: Observer) -> set[str]:
    """Live Canaries' names and their targets' (Flagger's per-canary series carry the target's name)."""
    out: set[str] = set()
    for c in observer.canaries():
        meta: dict[str, Any] = c.get("metadata") or {}  # type: ignore[assignment]
        spec: dict[str, Any] = c.get("spec") or {}  # type: ignore[assignment]
        out.add(str(meta.get("name")))
        out.add(str((spec.get("targetRef") or {}).get("name")))
    return out


class Soak:
    def __init__(self, args: argparse.Namespace, bed: Bed) -> None:
        self.args, self.bed = args, bed
        self.counters = soak_workload.Counters()
        self.samples: list[soak_sample.Sample] = []
        self.notes: list[str] = []
        self.snapshots: list[Path] = []
        self.restart: tuple[float, float] | None = None
        self.work = Path(tempfile.mkdtemp(prefix="canaryd-soak-"))
        self.t0 = 0.0
        self.last_live: set[str] = set()  # a Canary deleted since the last sample may still be scraped once

    async def go(self) -> None:
        from bench.run import ensure_nodes

        a = self.args
        client = await self.bed.admin_client(user_agent=AGENT)
        ns = f"soak-{uuid.uuid4().hex[:6]}"
        observer = Observer(client, ns)
        env = {ENV_FRAMES: str(a.tracemalloc_frames), ENV_DIR: str(self.work)} if a.tracemalloc_frames else {}
        prometheus = str(self.bed.prometheus_url)
        trim = ("--heap-trim-interval", a.heap_trim_interval) if a.heap_trim_interval is not None else ()
        op = Operator(kubeconfig=install_rbac(self.bed), namespace=ns, prometheus_url=prometheus, proxy=None,
                      log_dir=self.work, extra_env=env, extra_args=("--log-level", "info", *trim),
                      name="soak")
        try:
            await ensure_nodes(self.bed, 3 * a.canaries + 100)
            await workload.create_namespace(client, ns)
            await observer.start()
            op.start()
            await asyncio.to_thread(wait_ready, op, 120)
            names = await soak_workload.setup(client, ns, a.canaries, a.interval, prometheus)
            deadline = time.monotonic() + 120 + 0.5 * a.canaries
            while not all(observer.timelines.phase(x) == "Initialized" for x in names):
                if time.monotonic() > deadline:
                    self.notes.append("not every Canary was Initialized 120 s after creation; went on")
                    break
                await asyncio.sleep(0.5)
            await self._drive(client, ns, names, observer, op)
            self.notes += _log_levels(op)
        finally:
            op.stop()
            await observer.stop()
            await client.close()

    async def _drive(self, client: Any, ns: str, names: list[str], observer: Observer, op: Operator) -> None:
        a = self.args
        self.t0 = time.monotonic()
        end = self.t0 + a.minutes * 60
        jobs = [asyncio.create_task(self._canary(client, ns, i, x, end)) for i, x in enumerate(names)]
        jobs.append(asyncio.create_task(self._invalid(client, ns, end)))
        if a.prometheus_down > 0:
            jobs.append(asyncio.create_task(self._restart_prometheus(self.t0 + a.minutes * 30)))
        warm = self.t0 + a.warmup_minutes * 60
        j = 0
        try:
            while (due := self.t0 + j * a.sample_every) <= end:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                self.samples.append(await self._sample(observer, op))
                if a.tracemalloc_frames and not self.snapshots and time.monotonic() >= warm:
                    await self._snapshot(op)
                j += 1
            if a.tracemalloc_frames and self.snapshots:
                await self._snapshot(op)
        finally:
            for job in jobs:
                job.cancel()
            for job in jobs:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await job

    async def _canary(self, client: Any, ns: str, i: int, name: str, end: float) -> None:
        a = self.args
        offset = i * a.period / a.canaries
        k = 0
        while (due := self.t0 + offset + k * a.period) < end:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            try:
                await soak_workload.cycle(client, ns, i, name, k, a.interval, self.counters)
            except Exception as err:  # counted and reported, the soak goes on
                self.counters.errors.append(f"{name} period {k}: {err!r}"[:300])
            k += 1

    async def _invalid(self, client: Any, ns: str, end: float) -> None:
        k = 0
        while (due := self.t0 + (k + 0.5) * self.args.period) < end:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            try:
                await soak_workload.invalid(client, ns, k, self.args.interval, self.counters)
            except Exception as err:
                self.counters.errors.append(f"invalid period {k}: {err!r}"[:300])
            k += 1

    async def _restart_prometheus(self, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        down = time.monotonic() - self.t0
        await asyncio.to_thread(self.bed.stop, "prometheus")
        await asyncio.sleep(self.args.prometheus_down)
        await asyncio.to_thread(self.bed.start, "prometheus")
        self.restart = (down, time.monotonic() - self.t0)
        log.info("Prometheus restarted (down from %.0f s to %.0f s)", *self.restart)

    async def _sample(self, observer: Observer, op: Operator) -> soak_sample.Sample:
        try:
            text: str | None = await asyncio.to_thread(op.metrics_text)
        except OSError:
            text = None
        assert op.proc is not None
        live = live_names(observer)
        s = soak_sample.take(op.proc.pid, text, t=time.monotonic() - self.t0,
                             runs=outcomes(observer.timelines), live=live, grace=self.last_live)
        self.last_live = live
        log.info("t=%4.0fs runs=%d rss=%.1f MiB c-heap in use=%s free=%s KiB heap=%s tasks=%s fds=%d "
                 "series=%s entries=%s stale=%d live=%d tasks by coroutine: %s", s.t, s.runs,
                 s.rss_kib / 1024, s.c_heap_in_use_kib, s.c_heap_free_kib, s.heap_blocks, s.tasks,
                 s.fds, s.series, s.event_entries, len(s.stale_names), s.live,
                 " ".join(f"{k}={v}" for k, v in sorted(s.task_kinds.items())))
        return s

    async def _snapshot(self, op: Operator, timeout: float = 120.0) -> None:  # noqa: ASYNC109
        """SIGUSR2: canaryd writes a snapshot (canaryd/runtime/heapdump.py); waits till it loads."""
        assert op.proc is not None
        before = set(self.work.glob("*.tracemalloc"))
        os.kill(op.proc.pid, signal.SIGUSR2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            for path in sorted(set(self.work.glob("*.tracemalloc")) - before):
                try:
                    await asyncio.to_thread(tracemalloc.Snapshot.load, str(path))
                except (EOFError, OSError, ValueError, TypeError, AttributeError):
                    continue  # still being written
                except Exception:  # unpickling a half-written file raises anything
                    continue
                self.snapshots.append(path)
                return
        self.notes.append(f"no tracemalloc snapshot {timeout:.0f} s after SIGUSR2")

    def write(self, out: Path, stem: str) -> Path:
        a = self.args
        growth: list[dict[str, Any]] = []
        if len(self.snapshots) >= 2:
            growth = soak_report.top_growth(self.snapshots[0], self.snapshots[-1])
        notes = list(self.notes)
        notes.append(f"canaryd's log and the tracemalloc snapshots were kept in {self.work}")
        if self.counters.errors:
            notes.append(f"{len(self.counters.errors)} benchmark actions failed; first: "
                         + "; ".join(self.counters.errors[:3]))
        if a.tracemalloc_frames:
            notes.append(f"allocation tracing was on ({a.tracemalloc_frames} frames): RSS includes "
                         "tracemalloc's own bookkeeping (flat when the traced blocks are)")
        config = {"n": a.canaries, "period": a.period, "minutes": a.minutes, "interval": a.interval,
                  "sample_every": a.sample_every, "warmup_minutes": a.warmup_minutes,
                  "frames": a.tracemalloc_frames, "prometheus_down": a.prometheus_down,
                  "trim": a.heap_trim_interval or "60s (canaryd's default)"}
        data = {"config": config, "counters": dataclasses.asdict(self.counters), "tracemalloc_top": growth,
                "notes": notes, "restart": self.restart,
                "command": "python3 -m bench " + " ".join(shlex.quote(x) for x in sys.argv[1:]),
                "samples": [dataclasses.asdict(s) for s in self.samples]}
        return render(data, out, stem, plots=not a.no_plots, save_json=True)


def render(data: dict[str, Any], out: Path, stem: str, *, plots: bool, save_json: bool) -> Path:
    """``<stem>.md`` and ``.png`` from the results (and ``.json`` with ``save_json``); figures recomputed."""
    out.mkdir(parents=True, exist_ok=True)
    config = data["config"]
    samples = [soak_sample.Sample(**s) for s in data["samples"]]
    restart = (float(data["restart"][0]), float(data["restart"][1])) if data.get("restart") else None
    warmup_s = config["warmup_minutes"] * 60
    fig = soak_report.figures(samples, warmup_s, restart)
    notes = list(data["notes"])
    plot: Path | None = None
    if plots and samples:
        try:
            plot = soak_report.plot(samples, out / f"{stem}.png", warmup_s, restart)
        except ImportError:
            notes.append("plot left out: matplotlib is not installed (pip install -e '.[bench]')")
    if save_json:
        (out / f"{stem}.json").write_text(json.dumps({**data, "figures": fig}, indent=1))
    path = out / f"{stem}.md"
    path.write_text(soak_report.markdown(
        title=f"canaryd soak — {stem}", config=config, fig=fig, counters=data["counters"],
        growth=data["tracemalloc_top"], notes=notes, plot=plot, command=data.get("command", "").strip(),
        machine=report.machine()))
    return path


def _log_levels(op: Operator) -> list[str]:
    levels: dict[str, int] = {}
    for line in op.logs():
        level = str(line.get("level") or line.get("levelname") or ("raw" if "raw" in line else "?")).lower()
        levels[level] = levels.get(level, 0) + 1
    return [f"canaryd log lines by level: {', '.join(f'{k} {v}' for k, v in sorted(levels.items()))}"]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.report_only:
        src = Path(args.report_only)
        data = json.loads(src.read_text())
        path = render(data, src.parent, src.stem, plots=not args.no_plots, save_json=False)
        print(f"report: {path}")
        return 0
    stem = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d") + ("-soak-smoke" if args.smoke else "-soak")
    stem += f"-{args.tag}" if args.tag else ""
    bed = Bed.temporary(mesh=False)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    soak = Soak(args, bed)
    try:
        asyncio.run(soak.go())
    finally:
        bed.down(keep_logs=False)
        path = soak.write(Path(args.out), stem)
        print(f"report: {path}")
    fig = soak_report.figures(soak.samples, args.warmup_minutes * 60, soak.restart)
    print(json.dumps({k: v for k, v in fig.items() if k != "counts"}, indent=1))
    return 0
