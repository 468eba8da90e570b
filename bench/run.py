"""The side-by-side benchmark runner (issue 6): canaryd and the real Flagger v1.44.0 on one test bed, one
operator at a time, the same Canary manifests for both.

    python3 -m bench                        # everything that fits the defaults (about an hour)
    python3 -m bench --operators canaryd --scale-sizes 10,100,1000 --scale-intervals 10
    python3 -m bench --smoke --out /tmp/x   # the CI size: canaryd, 2 canaries, seconds
    python3 -m bench --soak [--smoke]       # the soak benchmark (bench/soak.py), on demand

Prints the tables and writes ``<out>/<date>.md``, ``<date>.json`` and PNG plots (``pip install -e .[bench]``
for matplotlib; without it the plots are left out and the report says so)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import logging
import math
import shlex
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from bench import apicost, report, scenario, sidebyside, workload
from bench.lateparts import LateStep
from bench.profiling import Profile
from bench.scenario import RunResult
from e2e.bed import Bed
from e2e.bed.cluster import Cluster
from e2e.bed.files import node_manifest

log = logging.getLogger("bench")
ROOT = Path(__file__).resolve().parents[1]
PODS_PER_NODE = 500


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--operators", default="canaryd,flagger", help="comma list: canaryd, flagger")
    p.add_argument("--reaction-n", type=int, default=10, help="canaries of the reaction/API-cost run")
    p.add_argument("--reaction-rounds", type=int, default=1,
                   help="new revisions per canary in that run (Flagger's event spam filter drops Events "
                        "after ~25 per canary: keep this at 2 or less)")
    p.add_argument("--reaction-interval", type=int, default=10, help="seconds (Flagger's minimum is 10)")
    p.add_argument("--idle", type=float, default=20.0, help="idle window before the first write, seconds")
    p.add_argument("--scale-sizes", default="10,100,500,1000")
    p.add_argument("--scale-intervals", default="10,60")
    p.add_argument("--flagger-max", type=int, default=1000, help="largest N for Flagger's scale runs")
    p.add_argument("--cap-factor", type=float, default=2.0,
                   help="multiplies each run's time cap ((steps + 6) × interval + 60 s + 0.2 s × N)")
    p.add_argument("--ready-after", type=int, default=0, metavar="SECONDS",
                   help="every new pod of the runs becomes Ready this long after the bed sees it: "
                        "slow rollouts, so that both operators meet readiness waits (default 0: at once)")
    p.add_argument("--budget-minutes", type=float, default=120.0,
                   help="no new run starts after this much time; the report says what was left out")
    p.add_argument("--repeats", type=int, default=1,
                   help="runs per scale cell, the operators alternating (issue 16: 3; median and range "
                        "reported side by side)")
    p.add_argument("--profile", action="store_true",
                   help="py-spy profile of the operator during each scale run (top frames in the report; "
                        "pip install py-spy)")
    p.add_argument("--no-reaction", action="store_true")
    p.add_argument("--no-scale", action="store_true")
    p.add_argument("--bed-dir", help="use the bed running in this dir (python3 -m e2e up --dir D)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--command-shown", help="with --report-only: the reproduce command the report shows")
    p.add_argument("--note", action="append", default=[], help="with --report-only: a line for the notes")
    p.add_argument("--report-only", metavar="JSON", nargs="+",
                   help="rewrite the Markdown report and plots from results JSON files (merged; the report "
                        "is named after the first), run nothing")
    p.add_argument("--smoke", action="store_true",
                   help="CI size: canaryd only, 2 canaries at 2 s steps, no scale runs")
    p.add_argument("--crowd", type=float, metavar="SCALE",
                   help="after the other runs, the crowded-cluster benchmark (bench/crowd.py) at this scale "
                        "of the issue's crowd (1 = 200 namespaces, 5,000 Deployments, 20,000 ConfigMaps, "
                        "5,000 Secrets) for the same operators, on a bed of its own; table in the report")
    p.add_argument("--crowd-interval", type=int, default=10, help="the crowded-cluster canaries' interval, s")
    p.add_argument("--soak", action="store_true",
                   help="the soak benchmark instead (bench/soak.py; its flags: --soak --help)")
    args = p.parse_args(argv)
    if args.smoke:
        args.operators, args.reaction_n, args.reaction_rounds = "canaryd", 2, 1
        args.reaction_interval, args.idle, args.no_scale = 2, 2.0, True
    return args


async def ensure_nodes(bed: Cluster, pods: int) -> None:
    """Adds kwok fake nodes (500 pods each) until the bed can hold ``pods`` pods; waits for them Ready."""
    client = await bed.admin_client(user_agent="canaryd-bench")
    try:
        from canaryd.kube.resources import Resource

        node_res = Resource("", "v1", "nodes", "Node", namespaced=False)
        nodes, _ = await client.list(node_res)
        have = sum(int((n.get("status") or {}).get("allocatable", {}).get("pods", "0")) for n in nodes)
        missing = max(0, math.ceil((pods - have) / PODS_PER_NODE))
        names = [f"bench-node-{len(nodes) + i}" for i in range(missing)]
        for name in names:
            await client.create(node_res, None, node_manifest(name))

        async def ready() -> bool:
            got, _ = await client.list(node_res)
            ok = {n["metadata"]["name"] for n in got
                  if any(c.get("type") == "Ready" and c.get("status") == "True"
                         for c in (n.get("status") or {}).get("conditions", []))}
            return set(names) <= ok

        deadline = time.monotonic() + 90
        while not await ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"fake nodes {names} not Ready after 90 s")
            await asyncio.sleep(0.5)
        if names:
            log.info("added %d fake nodes for %d pods", len(names), pods)
    finally:
        await client.close()


async def _cleanup(bed: Cluster, namespace: str, timeout: float = 300.0) -> None:  # noqa: ASYNC109
    client = await bed.admin_client(user_agent="canaryd-bench")
    try:
        await workload.delete_namespace(client, namespace)
        deadline = time.monotonic() + timeout
        while not await workload.namespace_gone(client, namespace):
            if time.monotonic() > deadline:
                log.warning("namespace %s still terminating after %.0f s; going on", namespace, timeout)
                return
            await asyncio.sleep(1.0)
    finally:
        await client.close()


@dataclasses.dataclass
class Plan:
    reaction: list[tuple[str, int]]          # (operator, n)
    scale: list[tuple[str, int, int, int]]   # (operator, interval, n, repeat)


def operators(args: argparse.Namespace) -> list[str]:
    return [o.strip() for o in args.operators.split(",") if o.strip()]


def plan(args: argparse.Namespace) -> Plan:
    ops = operators(args)
    reaction = [] if args.no_reaction else [(op, args.reaction_n) for op in ops]
    scale: list[tuple[str, int, int, int]] = []
    if not args.no_scale:
        for interval in _ints(args.scale_intervals):
            for n in _ints(args.scale_sizes):
                for repeat in range(max(1, args.repeats)):
                    for op in sidebyside.order(ops, repeat):
                        if op == "flagger" and n > args.flagger_max:
                            continue
                        scale.append((op, interval, n, repeat))
    return Plan(reaction, scale)


def _degraded(r: RunResult) -> bool:
    """Stop growing N for this operator and interval: wrong phases, or steps a whole interval late."""
    from bench.stats import percentile

    p99 = percentile(r.lateness, 99)
    return bool(not r.all_right or p99 is None or p99 >= r.interval)


def degraded_below(stopped: dict[tuple[str, int], int], op: str, interval: int, n: int) -> int | None:
    """The smaller N at which this operator degraded at this interval, if any: N grows no further past it,
    but the degraded cell's own repeats still run, so that cell too has its median and range (issue 16:
    >= 3 runs per cell)."""
    at = stopped.get((op, interval))
    return at if at is not None and n > at else None


class Runner:
    def __init__(self, args: argparse.Namespace, bed: Cluster, out: Path) -> None:
        self.args, self.bed, self.out = args, bed, out
        self.reaction: list[RunResult] = []
        self.scale: list[RunResult] = []
        self.notes: list[str] = []
        if args.ready_after:
            self.notes.append(f"slow rollouts (--ready-after {args.ready_after}): every new pod became Ready "
                              f"{args.ready_after} s after the bed saw it, the canary's scale-up and the "
                              "primary's rollout included")
        self.log_dir = out / "logs"
        self.started = time.monotonic()
        self.stem = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")

    def over_budget(self) -> bool:
        return bool(time.monotonic() - self.started > self.args.budget_minutes * 60)

    async def one(self, op: str, n: int, interval: int, rounds: int, idle: float,
                  stagger: float = 0.0, profile: Path | None = None) -> RunResult:
        ns = f"bench-{op}-{interval}s-{n}-{uuid.uuid4().hex[:4]}"
        log.info("run: %s N=%d interval=%ds rounds=%d in %s", op, n, interval, rounds, ns)
        t0 = time.monotonic()
        try:
            shape = workload.Shape(interval, ready_after=self.args.ready_after)
            res = await scenario.run(self.bed, op, n, interval, rounds=rounds, idle=idle,
                                     log_dir=self.log_dir, namespace=ns, cap_factor=self.args.cap_factor,
                                     shape=shape, stagger=stagger, profile=profile)
        finally:
            if not self.args.smoke:
                await _cleanup(self.bed, ns)
        log.info("done in %.0f s: %s", time.monotonic() - t0, summary(res))
        return res

    async def go(self, the_plan: Plan) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if not self.args.smoke:
            biggest = max([n for _, _, n, _ in the_plan.scale] + [n for _, n in the_plan.reaction] + [1])
            await ensure_nodes(self.bed, 3 * biggest + 100)
        for op, n in the_plan.reaction:
            if self.over_budget():
                self.notes.append(f"left out for the time budget: reaction run of {op}")
                continue
            self.reaction.append(await self.one(op, n, self.args.reaction_interval, self.args.reaction_rounds,
                                                self.args.idle, stagger=self.args.reaction_interval))
            self.write()
        stopped: dict[tuple[str, int], int] = {}  # (operator, interval) -> the N of its degraded run
        for op, interval, n, repeat in the_plan.scale:
            at = degraded_below(stopped, op, interval, n)
            if at is not None:
                self.notes.append(f"{op} {interval} s N={n} (run {repeat + 1}): not run, its run at "
                                  f"N={at} degraded")
                continue
            if self.over_budget():
                self.notes.append(f"{op} {interval} s N={n} (run {repeat + 1}): left out for the time budget")
                continue
            name = f"profile-{op}-{interval}s-{n}-{repeat + 1}.txt"
            profile = self.log_dir / name if self.args.profile else None
            res = await self.one(op, n, interval, 1, self.args.idle if self.args.repeats > 1 else 0.0,
                                 profile=profile)
            res.repeat = repeat
            self.scale.append(res)
            if op == "flagger" and _degraded(res):  # the issue: Flagger's runs stop where it degrades
                stopped.setdefault((op, interval), n)
            self.write()

    def write(self, command: str | None = None, *, save_json: bool = True) -> Path:
        """The Markdown report (and plots); with ``save_json`` also the results JSON — not when the report is
        rebuilt from JSON files (``--report-only``), which would overwrite its first source with the merge."""
        self.out.mkdir(parents=True, exist_ok=True)
        plots: list[Path] = []
        notes = list(self.notes)
        if not self.args.no_plots:
            try:
                plots = report.plot(self.reaction, self.scale, self.out, self.stem)
            except ImportError:
                notes.append("plots left out: matplotlib is not installed (pip install -e '.[bench]')")
        command = command or "python3 -m bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        text = report.markdown(title=f"canaryd vs Flagger v1.44.0 — {self.stem}", reaction=self.reaction,
                               scale=self.scale, setup=SETUP.format(steps=workload.Shape(10).steps),
                               command=command.strip(), notes=notes, plots=plots)
        path = self.out / f"{self.stem}.md"
        path.write_text(text)
        if not save_json:
            return path
        (self.out / f"{self.stem}.json").write_text(json.dumps(
            {"reaction": [dataclasses.asdict(r) for r in self.reaction],
             "scale": [dataclasses.asdict(r) for r in self.scale], "notes": notes}, indent=1, default=str))
        return path


SETUP = """Setup: one test bed (real kube-apiserver/etcd/controller-manager/scheduler 1.36.3, kwok fake
nodes with 500 pods each, Prometheus 2.42; no mesh simulator, nothing needs it), one operator process at a
time watching only the run's namespace. canaryd runs under its ServiceAccount (manifests/rbac) with
`--log-level info`; Flagger v1.44.0 (`go install github.com/fluxcd/flagger/cmd/flagger@v1.44.0`) with the
admin kubeconfig, `-mesh-provider=istio -log-level=info` and the bed's Prometheus; both read the same CRDs
(manifests/crd, group flagger.app: every field Flagger's v1.44.0 CRDs define for canaries, metrictemplates
and alertproviders is kept, except the Gloo-only `spec.upstreamRef.namespace`; Flagger's `number` counts are
`integer` in ours, and Flagger writes integers). Each canary: a podinfo Deployment with 1 replica,
`stepWeight` 25, `maxWeight` 50 ({steps} weight steps), `threshold` 2, one check: a MetricTemplate on the
constant query `vector(1)` (`thresholdRange.max` 2), so Prometheus stays cheap; no webhooks. A new revision
is a pod-template annotation written by the benchmark; times are the benchmark's own watch receipts
(monotonic clock). Run overhead = write → Succeeded minus interval × {steps}. Step lateness = the gaps
weight 25 → 50 → Promoting minus the interval. API cost = the operator's completed requests in the audit log
(by user agent): "whole run" from the first write to the last Succeeded divided by canaries × {steps} steps;
"steady" per canary between its first weight step and its promotion (±0.5 s), requests about that canary's
objects, divided by the weight steps taken in those windows; "idle" before the first write, per canary per
interval; reads are get+list (watches are not counted), writes are create/update/patch/delete (Events
included), and the whole run's writes go on after the last Succeeded until the operator has made none for 5 s
(an Event its client sent late belongs to the run; "of which after the round ended" counts those). Flagger
logs every Event it records: "Events logged, never written" is that count less its Event writes. In the
reaction runs each canary's write waits a random 0…interval s (Flagger's canaries created together tick
together). Medians and nearest-rank p99 (of small samples p99 is the maximum)."""


def summary(r: RunResult) -> str:
    from bench.stats import fmt, median, percentile

    api = r.per_canary_step(r.api)
    steady = r.steady_per_step()
    return (f"{r.operator} N={r.n} {r.interval}s: {r.succeeded}/{r.expected} Succeeded, reaction Event "
            f"{fmt(median(r.reaction_event))}/{fmt(percentile(r.reaction_event, 99))} s, scale-up "
            f"{fmt(median(r.reaction_scale))}/{fmt(percentile(r.reaction_scale, 99))} s, overhead "
            f"{fmt(median(r.overhead))} s, lateness p99 {fmt(percentile(r.lateness, 99))} s, cpu "
            f"{fmt(r.cpu_per_min, '', 1)} s/min, rss {fmt(r.peak_rss_mib, '', 0)} MiB, "
            f"api r/w per canary-step {'–' if api is None else f'{api[0]:.2f}/{api[1]:.2f}'}, steady "
            f"{'–' if steady is None else f'{steady[0]:.2f}/{steady[1]:.2f}'}")


async def run_all(args: argparse.Namespace, bed: Cluster) -> tuple[Runner, Path]:
    runner = Runner(args, bed, Path(args.out))
    try:
        await runner.go(plan(args))
    finally:
        path = runner.write()
    return runner, path


def load(path: Path) -> tuple[list[RunResult], list[RunResult], list[str]]:
    """The results JSON written by ``Runner.write`` back into RunResults."""
    data = json.loads(path.read_text())

    def one(d: dict[str, object]) -> RunResult:
        d = dict(d)
        for key in ("api", "idle_api", "steady_api"):
            if d.get(key) is not None:
                d[key] = apicost.Cost(**d[key])  # type: ignore[arg-type]
        if d.get("profile") is not None:
            prof = dict(d["profile"])  # type: ignore[call-overload]
            for key in ("top_self", "top_inclusive"):
                prof[key] = [tuple(x) for x in prof.get(key) or []]
            d["profile"] = Profile(**prof)
        d["load"] = tuple(d.get("load") or (0.0, 0.0, 0.0))  # type: ignore[arg-type]
        d["late_steps"] = [LateStep(**x) for x in d.get("late_steps") or []]  # type: ignore[attr-defined]
        return RunResult(**d)  # type: ignore[arg-type]

    return [one(d) for d in data["reaction"]], [one(d) for d in data["scale"]], list(data.get("notes", []))


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if "--soak" in given:  # its own flags (bench/soak.py)
        from bench import soak

        return soak.main(given)
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.report_only:
        srcs = [Path(x) for x in args.report_only]
        rerun = Runner(args, Cluster(), srcs[0].parent)
        rerun.stem = srcs[0].stem
        for src in srcs:
            reaction, scale, notes = load(src)
            rerun.reaction += reaction
            rerun.scale += scale
            rerun.notes += notes
        rerun.notes += args.note
        print(f"report: {rerun.write(command=args.command_shown, save_json=False)}")
        return 0
    own = args.bed_dir is None
    # no mesh simulator: the checks are a constant query, and its background traffic (20 rps per apex host)
    # would take a core at a few hundred canaries
    bed = Bed.temporary(mesh=False) if own else Bed(args.bed_dir)
    # a stopped benchmark (kill, Ctrl-C) still takes down the bed it started: SIGTERM unwinds like Ctrl-C
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        runner, path = asyncio.run(run_all(args, bed))
    finally:
        if own:
            bed.down(keep_logs=False)
    if runner.reaction:
        print(report.reaction_table(runner.reaction))
    if runner.scale:
        print(report.scale_table(runner.scale))
    kinds = report.writes_by_kind([*runner.reaction, *runner.scale])
    if kinds:
        print(kinds)
    print(report.targets(runner.reaction, runner.scale))
    if args.crowd:
        from bench import crowd

        # after the other runs' bed is down: one bed at a time on the machine
        doc, _ = crowd.run(Path(args.out), runner.stem, scale=args.crowd, trees=[("canaryd", ROOT)],
                           flagger="flagger" in operators(args), interval=args.crowd_interval)
        with path.open("a") as fh:
            fh.write("\n" + doc)
        print(doc)
    print(f"report: {path}")
    return 0
