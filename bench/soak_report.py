"""The soak's figures from its samples: RSS and heap slopes per run after warm-up, each count's range and
whether it kept growing, Prometheus-restart recovery, the tracemalloc diff's top sites; then the Markdown
summary and a PNG (matplotlib, extra ``bench``; left out without it)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.soak_sample import Sample

COUNTS = ("tasks", "fds", "threads", "series", "event_entries", "cache_objects")
RSS_TARGET_KIB_PER_RUN = 0.1
EVENT_ENTRIES_PER_CANARY = 64  # EventRecorder's per_canary cap


def slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Least-squares slope of ys over xs (None with fewer than 3 points or no spread in xs)."""
    if len(xs) < 3:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def _values(samples: Sequence[Sample], key: str) -> list[float]:
    return [float(v) for s in samples if (v := getattr(s, key)) is not None]


def grows(samples: Sequence[Sample], key: str) -> bool | None:
    """Still growing: the last third's maximum above the first third's by more than 10 % + 2 (noise from
    where in their runs the canaries were when sampled)."""
    vals = _values(samples, key)
    if len(vals) < 6:
        return None
    third = len(vals) // 3
    return max(vals[-third:]) > 1.1 * max(vals[:third]) + 2


def figures(samples: Sequence[Sample], warmup_s: float,
            restart: tuple[float, float] | None) -> dict[str, Any]:
    # from the sample after the first one past warm-up: the soak takes its first tracemalloc snapshot
    # right after that one, and the snapshot itself raises RSS by a few MiB once
    after = [s for s in samples if s.t >= warmup_s][1:]
    out: dict[str, Any] = {"samples": len(samples), "after_warmup": len(after)}
    if not samples:
        return out
    first, last = samples[0], samples[-1]
    out.update(runs=last.runs, promoted=last.promoted, rolled_back=last.failed,
               rss_start_mib=round(first.rss_kib / 1024, 1), rss_end_mib=round(last.rss_kib / 1024, 1),
               rss_max_mib=round(max(s.rss_kib for s in samples) / 1024, 1))
    if after:
        out["rss_warm_mib"] = round(after[0].rss_kib / 1024, 1)
        out["runs_after_warmup"] = after[-1].runs - after[0].runs
    k = slope([s.runs for s in after], [s.rss_kib for s in after])
    out["rss_kib_per_run"] = None if k is None else round(k, 4)
    out["rss_target_met"] = None if k is None else k <= RSS_TARGET_KIB_PER_RUN
    m = slope([s.t / 60 for s in after], [s.rss_kib for s in after])
    out["rss_kib_per_min"] = None if m is None else round(m, 2)
    with_heap = [s for s in after if s.heap_blocks is not None]
    h = slope([s.runs for s in with_heap], [float(s.heap_blocks or 0) for s in with_heap])
    out["heap_blocks_per_run"] = None if h is None else round(h, 3)
    for key in ("c_heap_in_use_kib", "c_heap_free_kib"):
        known = [s for s in after if getattr(s, key) is not None]
        c = slope([s.runs for s in known], [float(getattr(s, key)) for s in known])
        out[key.replace("_kib", "_kib_per_run")] = None if c is None else round(c, 4)
    live = max((s.live for s in samples), default=0)
    out["live_max"] = live
    ranges: dict[str, Any] = {}
    for key in (*COUNTS, "heap_blocks", "c_heap_in_use_kib", "c_heap_free_kib"):
        vals = _values(samples, key)
        warm = _values(after, key)
        ranges[key] = {"all": [min(vals), max(vals)] if vals else None,
                       "after_warmup": [min(warm), max(warm)] if warm else None,
                       "grows": grows(after, key)}
    out["counts"] = ranges
    entries = _values(samples, "event_entries")
    out["event_entries_bound"] = EVENT_ENTRIES_PER_CANARY * live
    out["event_entries_within_bound"] = bool(entries) and max(entries) <= EVENT_ENTRIES_PER_CANARY * live
    if after and after[0].task_kinds:
        kinds = set(after[0].task_kinds) | set(last.task_kinds)
        delta = {k: last.task_kinds.get(k, 0) - after[0].task_kinds.get(k, 0) for k in kinds}
        changed = [(k, v) for k, v in delta.items() if v]
        out["task_kinds_change"] = dict(sorted(changed, key=lambda kv: -kv[1]))
        out["task_kinds_end"] = dict(sorted(last.task_kinds.items(), key=lambda kv: -kv[1]))
    # one task per live Canary: more would be a deleted Canary's task living on (issue 17's leak)
    extra = [s.task_kinds.get("CanaryTask.run", 0) - s.live for s in samples if s.task_kinds]
    if extra:
        out["canary_tasks_over_live"] = {"max": max(extra), "end": extra[-1]}
    out["stale_names_end"] = last.stale_names
    out["stale_names_max"] = max((len(s.stale_names) for s in samples), default=0)
    if restart is not None:
        before = [s for s in samples if s.t < restart[0]]
        later = [s for s in samples if s.t >= restart[1] + 120]
        out["restart_at_s"] = [round(restart[0]), round(restart[1])]
        out["rss_before_restart_mib"] = round(before[-1].rss_kib / 1024, 1) if before else None
        out["rss_2min_after_restart_mib"] = round(later[0].rss_kib / 1024, 1) if later else None
    return out


def top_growth(first: Path, second: Path, limit: int = 15) -> list[dict[str, Any]]:
    """The allocation sites that grew most between two tracemalloc snapshots (canaryd/runtime/heapdump.py)."""
    noise = (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen *>"),
             tracemalloc.Filter(False, "<unknown>"))
    a = tracemalloc.Snapshot.load(str(first)).filter_traces(noise)
    b = tracemalloc.Snapshot.load(str(second)).filter_traces(noise)
    rows = []
    for stat in b.compare_to(a, "lineno")[:limit]:
        frame = stat.traceback[0]
        rows.append({"site": f"{_short(frame.filename)}:{frame.lineno}", "size_diff_kib":
                     round(stat.size_diff / 1024, 1), "count_diff": stat.count_diff,
                     "size_kib": round(stat.size / 1024, 1)})
    return rows


def _short(filename: str) -> str:
    for marker in ("/canaryd/", "/site-packages/", "/lib/python"):
        if marker in filename:
            return marker.strip("/") + "/" + filename.split(marker, 1)[1]
    return filename


def _range(r: dict[str, Any] | None, key: str) -> str:
    if not r or r.get(key) is None:
        return "–"
    lo, hi = r[key]
    return f"{lo:g} … {hi:g}"


def _yes(v: object) -> str:
    return {True: "yes", False: "no", None: "–"}.get(v, str(v))  # type: ignore[call-overload, no-any-return]


def markdown(*, title: str, config: dict[str, Any], fig: dict[str, Any], counters: dict[str, Any],
             growth: list[dict[str, Any]], notes: Sequence[str], plot: Path | None, command: str,
             machine: str) -> str:
    lines = [f"# {title}", "", f"Machine: {machine}.", "", f"Reproduce: `{command}`", "",
             "Setup: " + SETUP.format(**config), "", "## Figures", "",
             f"- Runs ended: **{fig.get('runs', 0)}** ({fig.get('promoted', 0)} promoted, "
             f"{fig.get('rolled_back', 0)} rolled back) in {config['minutes']} min; the benchmark wrote "
             f"{counters.get('revisions', 0)} revisions ({counters.get('superseding', 0)} of them "
             f"superseding a run, {counters.get('config_changes', 0)} ConfigMap changes), re-created "
             f"{counters.get('recreated', 0)} Canaries, created/deleted "
             f"{counters.get('invalid_created', 0)}/{counters.get('invalid_deleted', 0)} invalid ones.",
             f"- RSS: {fig.get('rss_start_mib')} MiB at the first sample, {fig.get('rss_warm_mib')} MiB "
             f"after warm-up ({config['warmup_minutes']} min), {fig.get('rss_end_mib')} MiB at the end "
             f"(max {fig.get('rss_max_mib')}).",
             f"- RSS slope after warm-up: **{fig.get('rss_kib_per_run')} KiB per run** over "
             f"{fig.get('runs_after_warmup')} runs ({fig.get('rss_kib_per_min')} KiB/min); target ≤ "
             f"{RSS_TARGET_KIB_PER_RUN} KiB per run: {_yes(fig.get('rss_target_met'))}.",
             f"- Python heap: {fig.get('heap_blocks_per_run')} blocks per run after warm-up; glibc's "
             f"heap (`canaryd_c_heap_bytes`): in use {fig.get('c_heap_in_use_kib_per_run')} KiB per run, "
             f"held free {fig.get('c_heap_free_kib_per_run')} KiB per run (`--heap-trim-interval` "
             f"{config.get('trim', '0 (not yet a flag)')}).",
             f"- Live Canaries at most {fig.get('live_max')} (invalid ones included); per-canary series "
             f"naming a Canary or target no longer there: {len(fig.get('stale_names_end') or [])} at the end "
             f"(at most {fig.get('stale_names_max')} in a sample).",
             f"- Event aggregation entries within {EVENT_ENTRIES_PER_CANARY} × live Canaries "
             f"(= {fig.get('event_entries_bound')}): {_yes(fig.get('event_entries_within_bound'))}."]
    if fig.get("task_kinds_end"):
        lines.append("- asyncio tasks at the end by coroutine: " + ", ".join(
            f"{k} {v}" for k, v in fig["task_kinds_end"].items()) + "; change since warm-up: " + (", ".join(
            f"{k} {v:+d}" for k, v in fig.get("task_kinds_change", {}).items()) or "none") + ".")
    if fig.get("canary_tasks_over_live"):
        over = fig["canary_tasks_over_live"]
        lines.append(f"- Canary tasks (`CanaryTask.run`) minus live Canaries: at most {over['max']:+d} in a "
                     f"sample, {over['end']:+d} at the end (a deletion seen by the benchmark may not have "
                     "reached canaryd's watch yet).")
    if "restart_at_s" in fig:
        down, up = fig["restart_at_s"]
        lines.append(f"- Prometheus stopped at {down} s, back at {up} s: "
                     f"RSS {fig.get('rss_before_restart_mib')} MiB before, " + (
                         f"{fig['rss_2min_after_restart_mib']} MiB two minutes after it was back."
                         if fig.get("rss_2min_after_restart_mib") is not None
                         else "no sample two minutes after it was back."))
    lines += ["", "| count | whole soak (min … max) | after warm-up | still growing? |", "|---|---|---|---|"]
    for key, r in (fig.get("counts") or {}).items():
        lines.append(f"| {key} | {_range(r, 'all')} | {_range(r, 'after_warmup')} | {_yes(r.get('grows'))} |")
    if growth:
        lines += ["", "## Allocation sites that grew most (tracemalloc, end of warm-up → end)", "",
                  "| site | size diff KiB | blocks diff | size KiB at the end |", "|---|---|---|---|"]
        lines += [f"| `{g['site']}` | {g['size_diff_kib']} | {g['count_diff']} | {g['size_kib']} |"
                  for g in growth]
    if plot is not None:
        lines += ["", f"![soak]({plot.name})"]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


SETUP = """one test bed of its own (real kube-apiserver/etcd/controller-manager/scheduler, kwok fake nodes,
Prometheus; no mesh simulator), canaryd under its ServiceAccount watching the soak's namespace with
`--log-level info` and `CANARYD_TRACEMALLOC={frames}` (0: tracing off). {n} canaries with podinfo
Deployments, each acting once per {period} s period at its own offset; analysis interval {interval} s
(superseded ones 3 × that), `stepWeight` 25, `maxWeight` 50, threshold 2, one check on a constant
query. Roles by index (bench/soak_workload.py): promoted, rolled back (check on `vector(5)` > 2),
deleted and re-created every other period, superseded mid-run, tracked ConfigMap changed; plus one invalid
Canary (missing target) per period, the previous one deleted; Prometheus stopped and started again half-way.
Sampled every {sample_every} s from /proc and canaryd's /metrics; "runs" are the Canaries' moves to
Succeeded or Failed in the benchmark's watch. Slopes are least-squares over the samples after warm-up
(from the one after the warm-up tracemalloc snapshot, which raises RSS once by a few MiB)."""


def plot(samples: Sequence[Sample], out: Path, warmup_s: float, restart: tuple[float, float] | None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s.t / 60 for s in samples]
    panels = (("rss_kib", "RSS (KiB)"), ("heap_blocks", "Python heap blocks"), ("tasks", "asyncio tasks"),
              ("fds", "open fds"), ("series", "metric series"),
              ("event_entries", "Event aggregation entries"),
              ("threads", "threads"), ("cache_objects", "cache objects"), ("runs", "runs ended"),
              ("c_heap_in_use_kib", "glibc heap in use (KiB)"),
              ("c_heap_free_kib", "glibc heap held free (KiB)"),
              ("live", "live Canaries"))
    fig, axes = plt.subplots(3, 4, figsize=(16, 9), sharex=True)
    for ax, (key, label) in zip(axes.flat, panels, strict=True):
        ax.plot(t, [getattr(s, key) if getattr(s, key) is not None else float("nan") for s in samples],
                marker=".")
        ax.set_title(label, fontsize=10)
        ax.axvline(warmup_s / 60, color="grey", linestyle=":")
        if restart is not None:
            ax.axvspan(restart[0] / 60, restart[1] / 60, color="orange", alpha=0.2)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("minutes")
    fig.suptitle("canaryd soak (dotted: end of warm-up; orange: Prometheus down)")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
