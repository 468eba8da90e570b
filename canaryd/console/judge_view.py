"""The judge's report in ``kubectl canary get``: one line per judged metric under the judge's check
(classification, canary/primary ratio, p-value, samples per side), from ``status.checks[].judge``; and
the report as the dashboard's canary page gets it (:func:`judge_report`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _number(v: Any, text: str) -> str:
    return text.format(v) if isinstance(v, int | float) and not isinstance(v, bool) else "n/a"


def metric_line(m: Mapping[str, Any], width: int) -> str:
    raw = m.get("samples")
    samples: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    return (f"    {str(m.get('name', '')).ljust(width)}  {m.get('classification', '?')!s:<16}"
            f" canary/primary {_number(m.get('ratio'), '{:.2f}')}  p={_number(m.get('pValue'), '{:.2g}')}"
            f"  samples {samples.get('canary', 0)}/{samples.get('primary', 0)}"
            + (" [dry run]" if m.get("dryRun") else ""))


def judge_lines(check: Mapping[str, Any]) -> list[str]:
    """The lines for one ``status.checks`` entry: none unless it carries a judge's report."""
    report = check.get("judge")
    if not isinstance(report, Mapping):
        return []
    metrics = [m for m in report.get("metrics") or [] if isinstance(m, Mapping)]
    if not metrics:
        return []
    width = max(len(str(m.get("name", ""))) for m in metrics)
    return [metric_line(m, width) for m in metrics]


def judge_report(status: Mapping[str, Any]) -> dict[str, Any] | None:
    """The last step's judge report (the ``status.checks`` entry carrying one) with its check's name,
    for the dashboard's per-metric table; None without one."""
    for check in status.get("checks") or []:
        if isinstance(check, Mapping) and isinstance(check.get("judge"), Mapping):
            return {**check["judge"], "check": str(check.get("name") or "judge")}
    return None
