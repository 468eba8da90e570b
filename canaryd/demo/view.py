"""What the demo prints while a run goes on: one line per change of the Canary's progress (phase, weight,
failed checks, the last checks with their values) and each new Event once. Pure functions of the
objects read from the API server, so they are tested with tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    name: str
    verdict: str
    value: float | None
    threshold: str


@dataclass(frozen=True)
class Progress:
    phase: str
    weight: int
    failed: int
    threshold: int
    checks: tuple[Check, ...]
    message: str

    def key(self) -> tuple[Any, ...]:
        """What makes a new line worth printing (values alone change every scrape)."""
        return (self.phase, self.weight, self.failed, tuple(c.verdict for c in self.checks), self.message)


def progress_of(canary: Mapping[str, Any]) -> Progress:
    status = canary.get("status") or {}
    spec = canary.get("spec") or {}
    analysis = spec.get("analysis") or spec.get("canaryAnalysis") or {}
    checks = tuple(
        Check(name=str(c.get("name", "")), verdict=str(c.get("verdict", "")),
              value=float(c["value"]) if isinstance(c.get("value"), int | float) else None,
              threshold=str(c.get("threshold", "")))
        for c in status.get("checks") or [] if isinstance(c, dict)
    )
    return Progress(phase=str(status.get("phase") or "-"), weight=int(status.get("canaryWeight") or 0),
                    failed=int(status.get("failedChecks") or 0),
                    threshold=int(analysis.get("threshold") or 0), checks=checks,
                    message=str(status.get("message") or ""))


def unit(threshold: str) -> str:
    """The unit the threshold text uses (``>= 99%`` → ``%``, ``<= 500ms`` → ``ms``), for the value."""
    for u in ("%", "ms"):
        if threshold.rstrip().endswith(u):
            return u
    return ""


def render_check(c: Check) -> str:
    value = "no data" if c.value is None else f"{c.value:.2f}{unit(c.threshold)}"
    mark = {"pass": "ok", "fail": "FAIL", "nodata": "no data", "error": "ERROR"}.get(c.verdict, c.verdict)
    return f"{c.name} {value} ({c.threshold}: {mark})" if c.threshold else f"{c.name} {value} ({mark})"


def render(p: Progress, elapsed: float) -> str:
    line = f"{elapsed:6.1f}s  {p.phase:<12} weight {p.weight:>3}%  failed checks {p.failed}/{p.threshold}"
    if p.checks:
        line += "  | " + "; ".join(render_check(c) for c in p.checks)
    return line


def new_events(seen: dict[str, int], events: Iterable[Mapping[str, Any]]) -> list[str]:
    """Lines for Events not printed yet (a repeat of an aggregated Event counts as new: ``(xN)``), oldest
    first; ``seen`` (name -> count) is updated."""
    rows = sorted(events, key=lambda e: (str(e.get("lastTimestamp") or e.get("eventTime") or ""),
                                         str((e.get("metadata") or {}).get("resourceVersion") or "")))
    out: list[str] = []
    for e in rows:
        name = str((e.get("metadata") or {}).get("name") or "")
        count = int(e.get("count") or 1)
        if seen.get(name, 0) >= count:
            continue
        seen[name] = count
        kind = "Warning" if e.get("type") == "Warning" else "Normal "
        repeat = f" (x{count})" if count > 1 else ""
        out.append(f"         event {kind} {e.get('message', '')}{repeat}")
    return out
