"""Pass/fail of a measured value against a metric's thresholds, with Flagger's Halt texts
(flagger-reference.md §5.3).

Pure functions: the texts are the part after ``Halt <canary>.<ns> advancement `` (the engine adds that
prefix), e.g. ``success rate 69.17% < 99%`` or ``request duration 1.515s > 500ms``.
"""

from __future__ import annotations

from dataclasses import dataclass

from canaryd.engine.types import CheckResult, Verdict
from canaryd.gofmt import go_duration, go_float
from canaryd.model.spec import MetricSpec


def go_duration_ms(milliseconds: float) -> str:
    """``time.Duration(ms) * time.Millisecond`` printed, with Go's truncation of the float to int."""
    return go_duration(int(milliseconds) * 1_000_000)


@dataclass(frozen=True)
class Outcome:
    passed: bool
    message: str  # "" when passed
    threshold: str  # human form for status, e.g. ">= 99%" or "<= 500ms"
    inconclusive: bool = False  # within the metric's inconclusiveRange (canaryd): a person decides


def _bounds_text(lo: str | None, hi: str | None) -> str:
    parts = ([f">= {lo}"] if lo is not None else []) + ([f"<= {hi}"] if hi is not None else [])
    return " and ".join(parts) or "any"


def success_rate(value: float, metric: MetricSpec) -> Outcome:
    """Percent of non-5xx requests. ``thresholdRange`` bounds both ways; legacy ``threshold`` is a
    minimum (``threshold > value`` fails; no threshold at all passes)."""
    tr = metric.threshold_range
    if tr is not None:
        text = _bounds_text(None if tr.min is None else f"{go_float(tr.min)}%",
                            None if tr.max is None else f"{go_float(tr.max)}%")
        if tr.min is not None and value < tr.min:
            return Outcome(False, f"success rate {value:.2f}% < {go_float(tr.min)}%", text)
        if tr.max is not None and value > tr.max:
            return Outcome(False, f"success rate {value:.2f}% > {go_float(tr.max)}%", text)
        return Outcome(True, "", text)
    threshold = metric.threshold or 0.0
    text = f">= {go_float(threshold)}%"
    if threshold > value:
        return Outcome(False, f"success rate {value:.2f}% < {go_float(threshold)}%", text)
    return Outcome(True, "", text)


def request_duration(value_ms: float, metric: MetricSpec) -> Outcome:
    """P99 latency in milliseconds, compared as Go Durations (value and bounds truncated to whole
    ms). Legacy ``threshold`` is a maximum in ms; with no threshold at all any traffic fails (0 ms max),
    as in Flagger."""
    d = int(value_ms)
    tr = metric.threshold_range
    if tr is not None:
        lo = None if tr.min is None else int(tr.min)
        hi = None if tr.max is None else int(tr.max)
        text = _bounds_text(None if lo is None else go_duration_ms(lo),
                            None if hi is None else go_duration_ms(hi))
        if lo is not None and d < lo:
            return Outcome(False, f"request duration {go_duration_ms(d)} < {go_duration_ms(lo)}", text)
        if hi is not None and d > hi:
            return Outcome(False, f"request duration {go_duration_ms(d)} > {go_duration_ms(hi)}", text)
        return Outcome(True, "", text)
    limit = int(metric.threshold or 0.0)
    text = f"<= {go_duration_ms(limit)}"
    if d > limit:
        return Outcome(False, f"request duration {go_duration_ms(d)} > {go_duration_ms(limit)}", text)
    return Outcome(True, "", text)


def custom(value: float, metric: MetricSpec) -> Outcome:
    """Inline queries and MetricTemplates: a value within canaryd's ``inconclusiveRange`` (bounds
    inclusive) is inconclusive whatever the thresholds say; otherwise ``thresholdRange`` both ways, and
    legacy ``threshold`` is a maximum (``value > threshold`` fails)."""
    out = _custom(value, metric)
    ir = metric.inconclusive_range
    if ir is None:
        return out
    band = _bounds_text(None if ir.min is None else go_float(ir.min),
                        None if ir.max is None else go_float(ir.max))
    threshold = f"{out.threshold}, inconclusive {band}"
    if (ir.min is None or value >= ir.min) and (ir.max is None or value <= ir.max):
        return Outcome(False, f"{metric.name} {value:.2f} within inconclusive range {band}", threshold, True)
    return Outcome(out.passed, out.message, threshold)


def custom_result(name: str, value: float, metric: MetricSpec) -> CheckResult:
    """The check result of an inline query's or a MetricTemplate's value (:func:`custom`)."""
    out = custom(value, metric)
    verdict: Verdict = "inconclusive" if out.inconclusive else "pass" if out.passed else "fail"
    return CheckResult(name=name, verdict=verdict, value=value, threshold=out.threshold, message=out.message)


def _custom(value: float, metric: MetricSpec) -> Outcome:
    tr = metric.threshold_range
    if tr is not None:
        text = _bounds_text(None if tr.min is None else go_float(tr.min),
                            None if tr.max is None else go_float(tr.max))
        if tr.min is not None and value < tr.min:
            return Outcome(False, f"{metric.name} {value:.2f} < {go_float(tr.min)}", text)
        if tr.max is not None and value > tr.max:
            return Outcome(False, f"{metric.name} {value:.2f} > {go_float(tr.max)}", text)
        return Outcome(True, "", text)
    threshold = metric.threshold or 0.0
    text = f"<= {go_float(threshold)}"
    if value > threshold:
        return Outcome(False, f"{metric.name} {value:.2f} > {go_float(threshold)}", text)
    return Outcome(True, "", text)
