"""One benchmark run: an operator, N canaries, one interval, some rounds of "new revision → Succeeded".

Everything is timed by the benchmark's own watch receipts (``observe.py``) on the monotonic clock:

* reaction: the pod-template write (time it was sent) → receipt of the ``New revision detected`` Event,
  and → receipt of the canary Deployment's scale-up (spec.replicas 0 → ≥1);
* run overhead: write → receipt of phase Succeeded, minus ``interval × steps`` (each weight step must be
  observed for one interval before the next step or the promotion);
* step lateness: for each canary the gaps weight 1 → weight 2 → … → Promoting, minus the interval;
* API cost: the operator's requests in the audit log from the first write to the last Succeeded,
  per canary per step; plus, before the first write, an idle window per canary per interval;
* CPU seconds per minute (same window) and peak RSS (VmHWM) of the operator process."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import apicost, lateparts, ownview, procstat, workload
from bench.observe import Observer
from bench.operators import make
from bench.profiling import Profile, Profiler
from bench.workload import Shape
from e2e.bed.cluster import Cluster

log = logging.getLogger("bench")
TERMINAL = ("Succeeded", "Failed")
AGENT = "canaryd-bench"  # the benchmark's own requests (setup and the pod-template writes)


@dataclass
class RunResult:
    operator: str
    n: int
    interval: int
    steps: int
    rounds: int
    reaction_event: list[float] = field(default_factory=list)
    reaction_scale: list[float] = field(default_factory=list)
    write_latency: list[float] = field(default_factory=list)  # API server, all writes in the namespace
    reaction_write: list[float] = field(default_factory=list)  # audit: trigger done → first write received
    run_wall: list[float] = field(default_factory=list)
    overhead: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    late_steps: list[lateparts.LateStep] = field(default_factory=list)  # lateness split (bench/lateparts.py)
    phases: dict[str, int] = field(default_factory=dict)
    expected: int = 0
    api: apicost.Cost | None = None
    idle_api: apicost.Cost | None = None
    steady_api: apicost.Cost | None = None
    steady_steps: int = 0
    idle_seconds: float = 0.0
    window_seconds: float = 0.0
    cpu_per_min: float | None = None
    apiserver_cpu_per_min: float | None = None
    peak_rss_mib: float | None = None
    init_seconds: float | None = None
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    own: dict[str, float | None] | None = None  # the operator's own metrics (bench/ownview.py), canaryd only
    idle_cpu_per_min: float | None = None  # the operator's CPU in the idle window (settled canaries)
    repeat: int = 0  # which run of its cell (python3 -m bench --repeats)
    profile: Profile | None = None  # py-spy during the run's window (--profile)
    tail_seconds: float = 0.0  # after each round's window, until the operator's writes stopped (all rounds)
    tail_writes: int = 0  # the operator's writes in those tails: work of the run done after its last end
    events_logged_init: int | None = None  # Events the operator logged by the end of initialization (Flagger)
    events_logged: int | None = None  # ... over the rounds and their tails: compared with the Event writes
    notes: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> int:
        return self.phases.get("Succeeded", 0)

    @property
    def all_right(self) -> bool:
        return self.expected > 0 and self.succeeded == self.expected

    def per_canary_step(self, cost: apicost.Cost | None) -> tuple[float, float] | None:
        if cost is None:
            return None
        return cost.per(self.n * self.rounds * self.steps)

    def steady_per_step(self) -> tuple[float, float] | None:
        """Requests per canary step between every canary's first weight step and the first promotion."""
        if self.steady_api is None or not self.steady_steps:
            return None
        return self.steady_api.per(self.steady_steps)

    def idle_per_canary_interval(self) -> tuple[float, float] | None:
        if self.idle_api is None or not self.idle_seconds:
            return None
        return self.idle_api.per(self.n * self.idle_seconds / self.interval)


async def _wait(pred: Any, timeout: float, interval: float = 0.5) -> bool:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(interval)
    return bool(pred())


async def _quiet(audit_path: Path, who: apicost.Who, timeout: float, quiet: float = 3.0) -> bool:  # noqa: ASYNC109
    """Waits until the operator made no write for ``quiet`` seconds: initialization has settled (canaryd
    writes Initialized before it creates the routing objects, so the phase alone is not enough), or a round's
    late writes are in."""
    deadline = time.monotonic() + timeout
    start = apicost.offset(audit_path)
    since = time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        end = apicost.offset(audit_path)
        if apicost.count(audit_path, start, end, who).writes:
            start, since = end, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return True
    return False


async def _tail(res: RunResult, audit_path: Path, who: apicost.Who, n: int) -> apicost.Cost:
    """Waits, after a round's last run ended, until the operator stopped writing (5 s without a write, at
    most 30 s + 0.2 s per canary) and returns its writes in between: what it writes for the round after the
    round ended — an Event still queued in its client, say — is counted with the round instead of falling
    between rounds. Reads, CPU and the window stay the round's own."""
    end = apicost.offset(audit_path)
    t0 = time.monotonic()
    cap = 30 + 0.2 * n
    if not await _quiet(audit_path, who, cap, quiet=5.0):
        res.notes.append(f"still writing {cap:.0f}s after the round ended")
    res.tail_seconds += time.monotonic() - t0
    tail = apicost.count(audit_path, end, apicost.offset(audit_path), who, apicost.is_write)
    res.tail_writes += tail.writes
    return tail


def _apiserver_pid(bed: Cluster) -> int | None:
    procs = getattr(bed, "procs", None)
    return procs.pids().get("apiserver") if procs is not None else None


async def run(bed: Cluster, operator: str, n: int, interval: int, *, rounds: int = 1, idle: float = 0.0,
              log_dir: Path, namespace: str, create_namespace: bool = True, cap_factor: float = 1.0,
              shape: Shape | None = None, stagger: float = 0.0, profile: Path | None = None) -> RunResult:
    """Runs one scenario in ``namespace`` (created and filled here, deleted by the caller). ``stagger``: each
    canary's write waits a random 0…stagger s, so writes fall at random points of Flagger's ticks (the
    canaries of one run share the tick phase: without it a run is one sample of Flagger's reaction).
    ``profile``: a py-spy profile of the operator over the rounds is written there (bench/profiling.py)."""
    shape = shape or Shape(interval=interval)
    res = RunResult(operator, n, interval, shape.steps, rounds, expected=n * rounds)
    audit_path: Path | None = getattr(bed, "audit_log", None)
    client = await bed.admin_client(user_agent=AGENT)
    observer = Observer(client, namespace)
    op = make(operator, bed, namespace, log_dir)
    try:
        if create_namespace:
            await workload.create_namespace(client, namespace)
        await observer.start()
        op.start()
        t_init = time.monotonic()
        names = await workload.create_workload(client, namespace, n, shape, str(bed.prometheus_url),
                                               create_namespace_too=False)
        init_cap = 120 + 3 * interval + 0.3 * n + shape.ready_after
        ok = await _wait(lambda: all(observer.timelines.phase(x) == "Initialized" for x in names), init_cap)
        res.init_seconds = time.monotonic() - t_init
        if not ok:
            done = sum(observer.timelines.phase(x) == "Initialized" for x in names)
            res.notes.append(f"only {done}/{n} Initialized after {init_cap:.0f}s")
            log.warning("%s N=%d: %s; operator log:\n%s", operator, n, res.notes[-1], op.log_tail())
        if audit_path is not None:
            settle_cap = 120 + 0.3 * n
            if not await _quiet(audit_path, op.who(), settle_cap):
                res.notes.append(f"{operator} still writing {settle_cap:.0f}s after initialization")
            res.init_seconds = time.monotonic() - t_init
        logged0 = res.events_logged_init = op.events_logged()
        if idle and audit_path is not None:
            a0, t0, c0 = apicost.offset(audit_path), time.monotonic(), procstat.cpu_seconds(op.pid)
            await asyncio.sleep(idle)  # the idle window itself is the measurement
            res.idle_seconds = time.monotonic() - t0
            res.idle_cpu_per_min = (procstat.cpu_seconds(op.pid) - c0) / (res.idle_seconds / 60)
            res.idle_api = apicost.count(audit_path, a0, apicost.offset(audit_path), op.who())
        cap = cap_factor * ((shape.steps + 6) * interval + 60 + 0.2 * n + 2 * shape.ready_after)
        cpu_total = 0.0
        api_cpu_total = 0.0
        window = 0.0
        costs: list[apicost.Cost] = []
        api_pid = _apiserver_pid(bed)
        rng = random.Random(f"{operator}-{n}-{interval}")
        profiler = Profiler(op.pid, profile) if profile is not None else None
        for r in range(rounds):
            a0 = apicost.offset(audit_path) if audit_path is not None else 0
            c0 = procstat.cpu_seconds(op.pid)
            s0 = procstat.cpu_seconds(api_pid) if api_pid else 0.0
            sent: dict[str, float] = {}

            def writer(name: str, rev: str, sent: dict[str, float] = sent) -> Any:
                async def go() -> None:
                    if stagger:
                        await asyncio.sleep(rng.uniform(0.0, stagger))
                    sent[name] = time.monotonic()
                    await workload.trigger(client, namespace, name, rev)
                return go

            w0 = time.monotonic()
            await workload.bounded((writer(x, f"r{r + 1}") for x in names), limit=32)

            def finished(sent: dict[str, float] = sent) -> bool:
                return all(any(observer.timelines.first_status(x, sent[x], phase=p) is not None
                               for p in TERMINAL) for x in names)

            complete = await _wait(finished, cap)
            w1 = time.monotonic()
            window += w1 - w0
            cpu_total += procstat.cpu_seconds(op.pid) - c0
            if api_pid:
                api_cpu_total += procstat.cpu_seconds(api_pid) - s0
            if audit_path is not None:
                a1 = apicost.offset(audit_path)
                tail = await _tail(res, audit_path, op.who(), n)
                costs.append(apicost.count(audit_path, a0, a1, op.who()).plus(tail))
                firsts = apicost.first_writes(audit_path, a0, a1, op.who(), AGENT, namespace)
                res.reaction_write.extend(firsts[x] for x in names if x in firsts)
                res.write_latency.extend(apicost.write_latencies(audit_path, a0, a1, namespace))
                if r == 0:
                    _steady(res, observer, names, sent, shape, audit_path, a0, a1, op.who(), namespace)
                status_writes = apicost.status_writes(audit_path, a0, a1, op.who(), namespace)
            else:
                status_writes = None
            if not complete:
                res.notes.append(f"round {r + 1}: not all runs ended within the cap of {cap:.0f}s")
            _collect(res, observer, names, sent, shape, status_writes)
            if not op.alive():
                res.notes.append(f"{operator} exited; log:\n{op.log_tail()}")
                break
            if not complete:
                break
        logged = op.events_logged()
        if logged is not None and logged0 is not None:
            res.events_logged = logged - logged0
        if profiler is not None:
            res.profile = profiler.stop()
        res.window_seconds = window
        if window:
            res.cpu_per_min = cpu_total / (window / 60)
            res.apiserver_cpu_per_min = api_cpu_total / (window / 60) if api_pid else None
        res.peak_rss_mib = procstat.peak_rss_mib(op.pid)
        res.load = procstat.load_average()
        own = op.own_metrics() if op.alive() else None
        res.own = ownview.summary(own) if own else None
        if costs:
            merged: dict[str, int] = {}
            kinds: dict[str, int] = {}
            for c in costs:
                for k, v in c.by_verb_resource.items():
                    merged[k] = merged.get(k, 0) + v
                for k, v in c.by_kind.items():
                    kinds[k] = kinds.get(k, 0) + v
            res.api = apicost.Cost(sum(c.reads for c in costs), sum(c.writes for c in costs),
                                   sum(c.watches for c in costs), merged, kinds)
    finally:
        op.stop()
        await observer.stop()
        await client.close()
    return res


def _steady(res: RunResult, observer: Observer, names: list[str], sent: dict[str, float], shape: Shape,
            audit_path: Path, a0: int, a1: int, who: apicost.Who, namespace: str,
            margin: float = 0.5) -> None:
    """The steady part of each canary's run: after its first weight step, before its promotion (±margin);
    the operator's requests about that canary in its window, divided by the weight steps taken in it."""
    tl = observer.timelines
    wall = time.time() - time.monotonic()
    windows: dict[str, tuple[float, float]] = {}
    steps = 0
    for x in names:
        first = tl.first_status(x, sent[x], weight=shape.step_weight)
        promo = tl.first_status(x, sent[x], phase="Promoting")
        if first is None or promo is None or promo - margin <= first + margin:
            continue
        lo, hi = first + margin, promo - margin
        windows[x] = (lo + wall, hi + wall)
        steps += sum(1 for t, _, w in tl.status.get(x, ()) if lo <= t <= hi and w > 0)
    if steps:
        res.steady_api = apicost.count_in_windows(audit_path, a0, a1, who, namespace, windows)
        res.steady_steps = steps


def _collect(res: RunResult, observer: Observer, names: list[str], sent: dict[str, float],
             shape: Shape, status_writes: dict[str, list[tuple[float, float]]] | None = None) -> None:
    tl = observer.timelines
    wall = time.time() - time.monotonic()
    for x in names:
        t0 = sent[x]
        ev = tl.first_event(x, t0, "New revision detected")
        if ev is not None:
            res.reaction_event.append(ev - t0)
        up = tl.first_scale_up(x, t0)
        if up is not None:
            res.reaction_scale.append(up - t0)
        marks = [tl.first_status(x, t0, weight=shape.step_weight * k) for k in range(1, shape.steps + 1)]
        marks.append(tl.first_status(x, t0, phase="Promoting"))
        for a, b in itertools.pairwise(marks):
            if a is not None and b is not None:
                res.lateness.append(b - a - shape.interval)
                if status_writes is not None:
                    part = lateparts.split(b + wall, a + wall + shape.interval, status_writes.get(x, ()))
                    if part is not None:
                        res.late_steps.append(part)
        done = tl.first_status(x, t0, phase="Succeeded")
        failed = tl.first_status(x, t0, phase="Failed")
        final = "Succeeded" if done is not None else "Failed" if failed is not None else tl.phase(x) or "?"
        res.phases[final] = res.phases.get(final, 0) + 1
        if done is not None:
            res.run_wall.append(done - t0)
            res.overhead.append(done - t0 - shape.interval * shape.steps)
