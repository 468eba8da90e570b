"""canaryd against Flagger cell by cell (issue 16): each (interval, N) run several times with the operators
alternating, reported as median and range per operator and as the ratio of the medians — a "≤ Flagger"
target is met when that ratio is at most 1.0 (single runs on a shared machine differ up to 3× from load
alone, bench/results/2026-11-28.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bench.scenario import RunResult
from bench.stats import median

Figure = Callable[[RunResult], float | None]


def _per_canary_run(r: RunResult, count: float | None) -> float | None:
    """A count over the whole result divided by its canary runs; None without writes sorted by kind (results
    from before they were) or without canaries."""
    if count is None or r.api is None or not r.api.by_kind or not r.n:
        return None
    return count / (r.n * r.rounds)


def _writes_per_canary_run(r: RunResult) -> float | None:
    if r.api is None or not r.n:
        return None
    return r.api.writes / (r.n * r.rounds)


def _event_writes(r: RunResult) -> int:
    return sum(v for k, v in r.api.by_kind.items() if k.startswith("Event ")) if r.api is not None else 0


def _writes_without_events(r: RunResult) -> float | None:
    """What the run changed (status, routing, Deployments), Events left out: the part two operators that
    tell the same story must agree on."""
    return _per_canary_run(r, r.api.writes - _event_writes(r) if r.api is not None else None)


def _tail_writes(r: RunResult) -> float | None:
    return _per_canary_run(r, r.tail_writes if r.tail_seconds else None)  # none before tails were counted


def _events_lost(r: RunResult) -> float | None:
    """Events the operator logged recording but never wrote (Flagger's log tells; canaryd's writes are its
    log), per canary run."""
    logged = r.events_logged
    return _per_canary_run(r, max(0, logged - _event_writes(r)) if logged is not None else None)


def _events_logged_init(r: RunResult) -> float | None:
    if r.events_logged_init is None or not r.n:
        return None
    return r.events_logged_init / r.n


def per_step(per_min: float | None, r: RunResult) -> float | None:
    """Milliseconds per canary step from a per-minute CPU figure over the run's window. Per minute, the
    operator that finishes the same work sooner looks costlier; per step executed, both are charged for
    the same work."""
    if per_min is None or not r.window_seconds or not r.n:
        return None
    return 1000 * per_min * r.window_seconds / 60 / (r.n * r.rounds * r.steps)


def cpu_per_step(r: RunResult) -> float | None:
    """The operator's CPU milliseconds per canary step executed."""
    return per_step(r.cpu_per_min, r)


FIGURES: list[tuple[str, Figure, int]] = [  # (name, figure, digits)
    ("operator CPU ms per canary step", cpu_per_step, 1),
    ("operator CPU s/min", lambda r: r.cpu_per_min, 2),
    ("API-server CPU ms per canary step", lambda r: per_step(r.apiserver_cpu_per_min, r), 1),
    ("API-server CPU s/min", lambda r: r.apiserver_cpu_per_min, 1),
    ("API writes per canary run", _writes_per_canary_run, 1),
    ("… of which after the round ended", _tail_writes, 1),
    ("… Events left out", _writes_without_events, 1),
    ("Events logged, never written, per canary run", _events_lost, 1),
    ("Events logged in initialization per canary", _events_logged_init, 1),
    ("idle CPU s/min (settled canaries)", lambda r: r.idle_cpu_per_min, 3),
]


def cells(results: Sequence[RunResult]) -> dict[tuple[int, int], dict[str, list[RunResult]]]:
    """(interval, N) → operator → its runs, in run order."""
    out: dict[tuple[int, int], dict[str, list[RunResult]]] = {}
    for r in results:
        out.setdefault((r.interval, r.n), {}).setdefault(r.operator, []).append(r)
    return out


def summarise(values: Sequence[float | None], digits: int) -> tuple[float | None, str]:
    """(median, "median [min–max] (k runs)") over the runs that have the figure."""
    got = [v for v in values if v is not None]
    mid = median(got)
    if mid is None:
        return None, "–"
    if len(got) == 1:
        return mid, f"{mid:.{digits}f} (1 run)"
    return mid, f"{mid:.{digits}f} [{min(got):.{digits}f}–{max(got):.{digits}f}] ({len(got)} runs)"


def ratio_text(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or theirs <= 0:
        return "–"
    ratio = ours / theirs
    return f"{ratio:.2f} ({'met' if ratio <= 1.0 else 'missed'})"


def table(results: Sequence[RunResult]) -> str:
    """One row per cell and figure: canaryd and Flagger as median [range], and canaryd / Flagger."""
    rows = ["| interval | N | figure | canaryd | flagger | canaryd / flagger (≤ 1.0: met) |",
            "|---|---|---|---|---|---|"]
    for (interval, n), by_op in sorted(cells(results).items()):
        if not {"canaryd", "flagger"} <= set(by_op):
            continue
        for name, figure, digits in FIGURES:
            ours, ours_text = summarise([figure(r) for r in by_op["canaryd"]], digits)
            theirs, theirs_text = summarise([figure(r) for r in by_op["flagger"]], digits)
            if ours is None and theirs is None:
                continue
            rows.append(f"| {interval} s | {n} | {name} | {ours_text} | {theirs_text} | "
                        f"{ratio_text(ours, theirs)} |")
    return "\n".join(rows) if len(rows) > 2 else ""


def order(ops: Sequence[str], repeat: int) -> list[str]:
    """The operators of one repeat: alternating, so neither always runs on the fresher (or the more
    loaded) bed."""
    return list(ops) if repeat % 2 == 0 else list(reversed(ops))
