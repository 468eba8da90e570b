"""Text views of a Canary read from the API server: the demo's progress line, ``list``'s one row per
Canary and ``get``'s multi-line view (phase, weight bar, checks against thresholds, gates, next step,
Events). Pure functions of the objects, so they are tested with tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from canaryd.console.judge_view import judge_lines
from canaryd.model.fields import parse_time

# phases whose run is over (nothing moves until the next revision)
AT_REST = frozenset({"Initialized", "Succeeded", "Failed", "Terminated"})
GATES = {"Waiting": "confirm-rollout gate closed: the run waits for approval to start",
         "WaitingPromotion": "confirm-promotion gate closed: the run waits for approval to promote"}
MARKS = {"pass": "ok", "fail": "FAIL", "nodata": "no data", "error": "ERROR", "inconclusive": "INCONCLUSIVE"}


@dataclass(frozen=True)
class Check:
    name: str
    verdict: str
    value: float | None
    threshold: str
    message: str = ""
    note: str = ""  # the verdict algebra's note ("dry run: not counted", …): engine/verdicts.py
    counted: bool = True  # false: the result did not count (dry run, initial delay, tolerated error)


@dataclass(frozen=True)
class Progress:
    phase: str
    weight: int
    failed: int
    threshold: int
    checks: tuple[Check, ...]
    message: str
    max_weight: int = 0
    revision: str = ""
    promoted: str = ""
    next_step_at: float | None = None
    generation_seen: bool = True

    def key(self) -> tuple[Any, ...]:
        """What makes a new line worth printing (values alone change every scrape)."""
        return (self.phase, self.weight, self.failed, tuple(c.verdict for c in self.checks), self.message)


def _analysis(canary: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = canary.get("spec") or {}
    out = spec.get("analysis") or spec.get("canaryAnalysis") or {}
    return out if isinstance(out, Mapping) else {}


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def progress_of(canary: Mapping[str, Any]) -> Progress:
    status = canary.get("status") or {}
    if not isinstance(status, Mapping):
        status = {}
    analysis = _analysis(canary)
    checks = tuple(
        Check(name=str(c.get("name", "")), verdict=str(c.get("verdict", "")),
              value=float(c["value"]) if isinstance(c.get("value"), int | float) else None,
              threshold=str(c.get("threshold", "")), message=str(c.get("message") or ""),
              note=str(c.get("note") or ""), counted=c.get("counted") is not False)
        for c in status.get("checks") or [] if isinstance(c, dict)
    )
    steps = analysis.get("stepWeights")
    max_weight = _int(analysis.get("maxWeight")) or (
        max((_int(s) for s in steps), default=0) if isinstance(steps, list) else 0) or 100
    meta = canary.get("metadata") or {}
    observed = status.get("observedGeneration")
    return Progress(phase=str(status.get("phase") or "-"), weight=_int(status.get("canaryWeight")),
                    failed=_int(status.get("failedChecks")), threshold=_int(analysis.get("threshold")),
                    checks=checks, message=str(status.get("message") or ""), max_weight=max_weight,
                    revision=str(status.get("lastAppliedSpec") or ""),
                    promoted=str(status.get("lastPromotedSpec") or ""),
                    next_step_at=parse_time(status.get("nextStepAt")),
                    generation_seen=observed is None or _int(observed) >= _int(meta.get("generation")))


def unit(threshold: str) -> str:
    """The unit the threshold text uses (``>= 99%`` → ``%``, ``<= 500ms`` → ``ms``), for the value."""
    for u in ("%", "ms"):
        if threshold.rstrip().endswith(u):
            return u
    return ""


def render_check(c: Check) -> str:
    value = "no data" if c.value is None else f"{c.value:.2f}{unit(c.threshold)}"
    mark = MARKS.get(c.verdict, c.verdict) + (f", {c.note}" if c.note else "")
    return f"{c.name} {value} ({c.threshold}: {mark})" if c.threshold else f"{c.name} {value} ({mark})"


def render(p: Progress, elapsed: float) -> str:
    """The demo's and piped ``get -w``'s line: one per change of :meth:`Progress.key`."""
    line = f"{elapsed:6.1f}s  {p.phase:<12} weight {p.weight:>3}%  failed checks {p.failed}/{p.threshold}"
    if p.checks:
        line += "  | " + "; ".join(render_check(c) for c in p.checks)
    return line


def verdicts(p: Progress) -> str:
    """``list``'s last check verdicts, compact: ``request-success-rate=ok,request-duration=FAIL``."""
    return ",".join(f"{c.name}={MARKS.get(c.verdict, c.verdict or '?')}" for c in p.checks) or "-"


def weight_bar(weight: int, max_weight: int, width: int = 20) -> str:
    """``[#####.....]`` of the canary's share of traffic against its maximum weight."""
    top = max(1, max_weight)
    filled = max(0, min(width, round(width * weight / top)))
    return "[" + "#" * filled + "." * (width - filled) + f"] {weight}%/{top}%"


def duration_text(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def row(canary: Mapping[str, Any]) -> dict[str, Any]:
    """One Canary as ``list -o json`` and the table show it."""
    meta = canary.get("metadata") or {}
    p = progress_of(canary)
    return {"namespace": str(meta.get("namespace") or ""), "name": str(meta.get("name") or ""),
            "phase": p.phase, "weight": p.weight, "failedChecks": p.failed, "threshold": p.threshold,
            "revision": p.revision, "checks": [c.__dict__ for c in p.checks], "message": p.message}


LIST_HEADER = ("NAMESPACE", "NAME", "STATUS", "WEIGHT", "FAILED", "CHECKS")


def table(rows: Iterable[Mapping[str, Any]], *, namespaces: bool) -> list[str]:
    """``list``'s lines, columns aligned like ``kubectl get``; NAMESPACE only with ``-A``."""
    cells = [list(LIST_HEADER)]
    for r in rows:
        marks = ",".join(f"{c['name']}={MARKS.get(c['verdict'], c['verdict'] or '?')}" for c in r["checks"])
        cells.append([r["namespace"], r["name"], r["phase"], str(r["weight"]),
                      f"{r['failedChecks']}/{r['threshold']}", marks or "-"])
    if not namespaces:
        cells = [c[1:] for c in cells]
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    return ["   ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells]


def event_line(e: Mapping[str, Any]) -> str:
    count = _int(e.get("count")) or 1
    kind = "Warning" if e.get("type") == "Warning" else "Normal "
    stamp = str(e.get("lastTimestamp") or e.get("eventTime") or "")[11:19]
    repeat = f" (x{count})" if count > 1 else ""
    return f"{stamp} {kind} {e.get('message', '')}{repeat}"


def event_order(e: Mapping[str, Any]) -> tuple[str, int]:
    meta = e.get("metadata") or {}
    return (str(e.get("lastTimestamp") or e.get("eventTime") or ""), _int(meta.get("resourceVersion")))


def record_step(steps: list[tuple[Check, ...]], p: Progress, keep: int = 5) -> None:
    """Remember the checks of each step a live view sees (a new step writes new values), the last
    ``keep`` of them, for :func:`view`'s "earlier" column."""
    if p.checks and (not steps or steps[-1] != p.checks):
        steps.append(p.checks)
        del steps[:-keep]


def status_steps(canary: Mapping[str, Any]) -> list[tuple[Check, ...]]:
    """The checks of each analysis step of the current run kept in status (``status.stepChecks``, oldest
    first; thresholds and messages from ``status.checks``)."""
    status = canary.get("status") or {}
    steps = status.get("stepChecks") if isinstance(status, Mapping) else None
    if not isinstance(steps, list):
        return []
    return [tuple(Check(name=str(c.get("name", "")), verdict=str(c.get("verdict", "")),
                        value=float(c["value"]) if isinstance(c.get("value"), int | float) else None,
                        threshold="")
                  for c in s.get("checks") or [] if isinstance(c, dict))
            for s in steps if isinstance(s, dict)]


def _earlier(steps: Sequence[tuple[Check, ...]], name: str) -> str:
    values = [c for step in steps[:-1] for c in step if c.name == name]
    return " ".join("-" if c.value is None else f"{c.value:.1f}" for c in values)


def view(canary: Mapping[str, Any], events: Iterable[Mapping[str, Any]], now: float,
         *, recent: int = 8, steps: Sequence[tuple[Check, ...]] = ()) -> list[str]:
    """``get``'s view of one Canary, top to bottom; ``events`` are this Canary's, any order; each check's
    earlier values come from ``status.stepChecks`` (the last 5 steps), or else from ``steps``, the checks
    of the steps a live view saw (oldest first)."""
    steps = status_steps(canary)[-5:] or steps
    meta = canary.get("metadata") or {}
    p = progress_of(canary)
    lines = [f"Canary {meta.get('namespace', '')}/{meta.get('name', '')}   phase {p.phase}"
             + (f"   revision {p.revision}" if p.revision else ""),
             f"weight  {weight_bar(p.weight, p.max_weight)}",
             f"failed checks {p.failed}/{p.threshold}"]
    if p.next_step_at is not None and p.phase not in AT_REST:
        lines.append(f"next step in {duration_text(p.next_step_at - now)}")
    if p.phase in GATES:
        lines.append(f"gate: {GATES[p.phase]}")
    if p.message:
        lines.append(f"message: {p.message}")
    if p.checks:
        lines.append("checks:")
        width = max(len(c.name) for c in p.checks)
        for c in p.checks:
            value = "no data" if c.value is None else f"{c.value:.2f}{unit(c.threshold)}"
            mark = MARKS.get(c.verdict, c.verdict) + (f" ({c.note})" if c.note else "")
            extra = f"  {c.message}" if c.message and c.verdict != "pass" else ""
            earlier = _earlier(steps, c.name)
            extra += f"  (earlier steps: {earlier})" if earlier else ""
            lines.append(f"  {c.name.ljust(width)}  {value:>10}  {c.threshold or '-':<12} {mark}{extra}")
            lines.extend(judge_lines(_raw_check(canary, c.name)))
    rows = sorted(events, key=event_order)[-recent:]
    if rows:
        lines.append("events:")
        lines.extend("  " + event_line(e) for e in rows)
    return lines


def _raw_check(canary: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    status = canary.get("status") or {}
    checks = status.get("checks") if isinstance(status, Mapping) else None
    return next((c for c in checks or [] if isinstance(c, Mapping) and c.get("name") == name), {})


def new_events(seen: dict[str, int], events: Iterable[Mapping[str, Any]]) -> list[str]:
    """Lines for Events not printed yet (a repeat of an aggregated Event counts as new: ``(xN)``), oldest
    first; ``seen`` (name -> count) is updated."""
    rows = sorted(events, key=lambda e: (str(e.get("lastTimestamp") or e.get("eventTime") or ""),
                                         str((e.get("metadata") or {}).get("resourceVersion") or "")))
    out: list[str] = []
    for e in rows:
        name = str((e.get("metadata") or {}).get("name") or "")
        count = _int(e.get("count")) or 1
        if seen.get(name, 0) >= count:
            continue
        seen[name] = count
        kind = "Warning" if e.get("type") == "Warning" else "Normal "
        repeat = f" (x{count})" if count > 1 else ""
        out.append(f"         event {kind} {e.get('message', '')}{repeat}")
    return out
