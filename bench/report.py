"""Turns run results into the Markdown report (tables, the issue's targets met or not, the machine) and
PNG plots; matplotlib is imported only here and only when plots are asked for (extra ``bench``)."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Sequence
from pathlib import Path

from bench import curve, lateparts, profiling, sidebyside
from bench.scenario import RunResult
from bench.stats import fmt, median, percentile
from bench.writekinds import table as kinds_table


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        mem_kib = 0
    return (f"{os.cpu_count()} cores ({model}), {mem_kib / 2**20:.0f} GiB RAM, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


def _mp(values: Sequence[float], unit: str = " s") -> str:
    return f"{fmt(median(values), unit)} / {fmt(percentile(values, 99), unit)}"


def _rw(pair: tuple[float, float] | None) -> str:
    return "–" if pair is None else f"{pair[0]:.2f} / {pair[1]:.2f}"


def reaction_table(results: Sequence[RunResult]) -> str:
    rows = ["| operator | interval | samples | reaction → first write, audit log (median / p99) | "
            "reaction → Event (median / p99) | reaction → scale-up (median / p99) | "
            "run overhead (median / p99) | API reads / writes per canary step, steady | "
            "per canary step, whole run | idle, per canary interval |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| {r.operator} | {r.interval} s | {len(r.reaction_event)} of {r.expected} | "
                    f"{_mp(r.reaction_write)} | {_mp(r.reaction_event)} | {_mp(r.reaction_scale)} | "
                    f"{_mp(r.overhead)} | "
                    f"{_rw(r.steady_per_step())} | {_rw(r.per_canary_step(r.api))} | "
                    f"{_rw(r.idle_per_canary_interval())} |")
    return "\n".join(rows)


def scale_table(results: Sequence[RunResult]) -> str:
    rows = ["| operator | interval | N | ended Succeeded | step lateness (median / p99) | "
            "operator CPU s/min | peak RSS | API reads / writes per canary step (steady; whole run) | "
            "apiserver CPU s/min | API server write latency (median / p99) | "
            "operator's own view: step began late (median / p99); its API writes (median / p99) | "
            "init | load (1 min) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda x: (x.operator, -x.interval, x.n)):
        rows.append(f"| {r.operator} | {r.interval} s | {r.n} | {r.succeeded}/{r.expected} | "
                    f"{_mp(r.lateness)} | {fmt(r.cpu_per_min, '', 1)} | {fmt(r.peak_rss_mib, ' MiB', 0)} | "
                    f"{_rw(r.steady_per_step())}; {_rw(r.per_canary_step(r.api))} | "
                    f"{fmt(r.apiserver_cpu_per_min, '', 1)} | {_mp(r.write_latency)} | {_own(r.own)} | "
                    f"{fmt(r.init_seconds, ' s', 0)} | {r.load[0]:.1f} |")
    return "\n".join(rows)


def writes_by_kind(results: Sequence[RunResult]) -> str:
    """The operator's writes from the first new revision to the last end of a run (initialization not
    included), per canary per round, one row per kind; "" when no run has them (older results)."""
    cols = [(f"{r.operator} {r.n}×{r.interval} s", r.api.by_kind, float(r.n * r.rounds))
            for r in results if r.api is not None and r.api.by_kind]
    return kinds_table(cols) if cols else ""


def _le(value: float | None) -> str:
    if value is None:
        return "–"
    return "beyond the last bucket" if math.isinf(value) else f"≤ {value:g} s"


def _own(own: dict[str, float | None] | None) -> str:
    """Bucket bounds from canaryd's histograms (``–`` for Flagger, and for runs before they existed)."""
    if not own:
        return "–"
    return (f"{_le(own.get('lateness_p50_le'))} / {_le(own.get('lateness_p99_le'))}; "
            f"{_le(own.get('write_p50_le'))} / {_le(own.get('write_p99_le'))}")


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else "**met**" if ok else "**missed**"


def targets(reaction: Sequence[RunResult], scale: Sequence[RunResult]) -> str:
    ours = [r for r in reaction if r.operator == "canaryd"]
    lines = []
    if ours:
        ev = [x for r in ours for x in r.reaction_event]
        up = [x for r in ours for x in r.reaction_scale]
        p_ev, p_up = percentile(ev, 99), percentile(up, 99)
        ok = None if p_ev is None or p_up is None else p_ev < 0.5 and p_up < 0.5
        p_wr = percentile([x for r in ours for x in r.reaction_write], 99)
        lat = percentile([x for r in ours for x in r.write_latency], 99)
        lines.append(f"* reaction p99 under 0.5 s: {_verdict(ok)} (Event {fmt(p_ev, ' s')}, scale-up "
                     f"{fmt(p_up, ' s')}, {len(ev)} samples; canaryd's first write reached the API server "
                     f"{fmt(p_wr, ' s')} after the pod-template write completed, p99; the API server's own "
                     f"write latency p99 was {fmt(lat, ' s')} in that run)")
        costs = [c for r in ours if (c := r.steady_per_step()) is not None]
        if costs:
            reads = max(c[0] for c in costs)
            writes = max(c[1] for c in costs)
            ok = reads == 0 and writes <= 3
            lines.append(f"* zero reads and at most 3 writes per canary per step: {_verdict(ok)} "
                         f"({reads:.2f} reads, {writes:.2f} writes per canary step between the first weight "
                         "step and the promotion)")
    big = [r for r in scale if r.operator == "canaryd" and r.n >= 1000]
    if big:
        r = max(big, key=lambda x: (x.n, -x.interval))
        p = percentile(r.lateness, 99)
        lines.append(f"* {r.n} concurrent canaries ({r.interval} s): step lateness p99 under 1 s: "
                     f"{_verdict(p is not None and p < 1.0)} ({fmt(p, ' s')}); under one core: "
                     f"{_verdict(r.cpu_per_min is not None and r.cpu_per_min < 60)} "
                     f"({fmt(r.cpu_per_min, ' CPU s/min', 1)}); under 300 MiB: "
                     f"{_verdict(r.peak_rss_mib is not None and r.peak_rss_mib < 300)} "
                     f"({fmt(r.peak_rss_mib, ' MiB', 0)}); all Succeeded: {_verdict(r.all_right)}")
    else:
        lines.append("* 1,000 concurrent canaries: not measured in this run")
    lines += [line for r in scale if (line := _late_tail(r))]
    return "\n".join(lines)


def _late_tail(r: RunResult) -> str:
    """Where the latest 1 % of a run's steps lost their time (bench/lateparts.py); canaryd's runs, N ≥ 500."""
    tail = lateparts.slowest(r.late_steps)
    if r.operator != "canaryd" or r.n < 500 or not tail:
        return ""
    wait = _le((r.own or {}).get("pool_wait_p99_le"))

    def med(values: list[float]) -> str:
        return fmt(median(values), " s")

    return (f"* where the latest 1 % of the steps went ({r.n} × {r.interval} s, {len(tail)} of "
            f"{len(r.late_steps)} steps split, {med([s.lateness for s in tail])} late at the median): "
            f"{med([s.before for s in tail])} before the API server received the status write (canaryd's "
            f"pass and its wait for a connection; its connection wait p99 {wait}), "
            f"{med([s.server for s in tail])} in the API server, {med([s.delivery for s in tail])} until "
            f"the benchmark's watch delivered it (medians of that tail){_gc(r.own or {})}")


def _gc(own: dict[str, float | None]) -> str:
    """canaryd's own share beside its garbage collector's full collections, when the run measured them."""
    count = own.get("gc2_pauses")
    if count is None:
        return ""
    longest = _le(own.get("gc2_pause_max_le"))
    late, steps, slow = own.get("late_over_100ms"), own.get("steps"), own.get("gc2_over_100ms")
    over = (f" ({fmt(late, '', 0)} of {fmt(steps, '', 0)} more than 100 ms late)"
            if late is not None and steps else "")
    slow_text = f", {fmt(slow, '', 0)} of them over 100 ms" if slow is not None else ""
    return (f"; canaryd's passes began {_le(own.get('lateness_p99_le'))} late at p99{over}, and its garbage "
            f"collector ran {fmt(count, '', 0)} full collections, the longest {longest}{slow_text}")


def markdown(*, title: str, reaction: Sequence[RunResult], scale: Sequence[RunResult], setup: str,
             command: str, notes: Sequence[str], plots: Sequence[Path]) -> str:
    out = [f"# {title}", "", f"Machine: {machine()}.", "", f"Reproduce: `{command}`", "", setup, ""]
    if reaction:
        out += ["## Reaction, run overhead, API cost", "", reaction_table(reaction), ""]
    if scale:
        out += ["## Scale", "", scale_table(scale), ""]
        side = sidebyside.table(scale)
        if side:
            out += ["## Side by side (median [range] over the runs of each cell, operators alternating)", "",
                    "CPU per canary step = the operator's CPU over the run's window divided by N × steps; "
                    "idle CPU = the operator's CPU in the window after initialization settled, before the "
                    "first new revision (`--idle`).", "", side, ""]
        curves = [line for op, interval in sorted({(r.operator, r.interval) for r in scale})
                  for line in curve.markdown(scale, op, interval)]
        if curves:
            out += ["## Scale curve (medians per N)", "", *curves]
        profiled = [r for r in scale if r.profile is not None]
        if profiled:
            out += ["## Profiles (py-spy, the operator during the run's window)", ""]
            for r in profiled:
                assert r.profile is not None
                out += profiling.markdown(f"{r.operator}, {r.interval} s, N={r.n}, run {r.repeat + 1}",
                                          r.profile)
    kinds = writes_by_kind([*reaction, *scale])
    if kinds:
        out += ["## Writes per canary per run, by kind", "",
                "From the audit log (the operator's create/update/patch/delete, first new revision to the "
                "last Succeeded/Failed of the round and on until the operator has made no write for 5 s, "
                "initialization not included), divided by canaries × rounds (bench/writekinds.py).", "",
                kinds, ""]
    out += ["## canaryd targets (issue 6)", "", targets(reaction, scale), ""]
    run_notes = [f"* {r.operator} N={r.n} {r.interval} s: {n}" for r in [*reaction, *scale] for n in r.notes]
    if notes or run_notes:
        out += ["## Notes", "", *[f"* {n}" for n in notes], *run_notes, ""]
    if plots:
        out += ["## Plots", "", "Written next to this report by each run (not committed: .gitignore).", "",
                *[f"![{p.stem}]({p.name})" for p in plots], ""]
    return "\n".join(out)


def plot(reaction: Sequence[RunResult], scale: Sequence[RunResult], out_dir: Path, stem: str) -> list[Path]:
    """Reaction box plots and the scale curves; returns the PNG files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    if reaction:
        fig, ax = plt.subplots(figsize=(7, 4))
        data, labels = [], []
        for r in reaction:
            for what, vals in (("Event", r.reaction_event), ("scale-up", r.reaction_scale)):
                if vals:
                    data.append(vals)
                    labels.append(f"{r.operator}\n{what}")
        if data:
            ax.boxplot(data, whis=(0, 100))
            ax.set_xticks(range(1, len(labels) + 1), labels)
            ax.set_yscale("log")
            ax.set_ylabel("seconds after the pod-template write (log)")
            ax.set_title("Reaction to a new revision")
            fig.tight_layout()
            path = out_dir / f"{stem}-reaction.png"
            fig.savefig(path, dpi=100)
            written.append(path)
        plt.close(fig)
    if scale:
        fig, axes = plt.subplots(1, 3, figsize=(13, 4))
        series: dict[tuple[str, int], list[RunResult]] = {}
        for r in scale:
            series.setdefault((r.operator, r.interval), []).append(r)
        for (op, interval), rs in sorted(series.items()):
            rs = sorted(rs, key=lambda x: x.n)
            ns = [r.n for r in rs]
            label = f"{op} {interval} s"
            pts = curve.points(rs, op, interval)
            ns = [p.n for p in pts]
            axes[0].plot(ns, [p.lateness_p99 or 0.0 for p in pts], marker="o", label=f"{label} p99")
            axes[0].plot(ns, [p.lateness_p50 or 0.0 for p in pts], marker=".", linestyle=":",
                         label=f"{label} p50")
            axes[1].plot(ns, [p.cpu_ms_per_step or 0.0 for p in pts], marker="o", label=label)
            axes[2].plot(ns, [p.rss_mib or 0.0 for p in pts], marker="o", label=label)
        for ax, title in zip(axes, ("step lateness p50 / p99 (s)", "operator CPU ms per canary step",
                                    "peak RSS (MiB)"), strict=True):
            ax.set_xscale("log")
            ax.set_xlabel("concurrent canaries")
            ax.set_title(title)
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"{stem}-scale.png"
        fig.savefig(path, dpi=100)
        written.append(path)
        plt.close(fig)
    return written
