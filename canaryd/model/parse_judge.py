"""``analysis.judge`` of a Canary -> :class:`canaryd.model.judge_spec.JudgeSpec`, presets expanded.

Every out-of-range value raises :class:`FieldError` naming the field, so the Canary gets ``Valid=False``
instead of verdicts computed from nonsense; the range query's step is checked against the rate windows
of each rendered query (overlapping windows make correlated samples: docs/judge.md, "Samples")."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

from canaryd.analysis.query_template import RenderError, TemplateVars, render
from canaryd.judge import presets
from canaryd.judge.classify import DEFAULT_CONFIDENCE, DEFAULT_MIN_SAMPLES, DIRECTIONS, Direction
from canaryd.judge.judge import DEFAULT_MARGINAL, DEFAULT_PASS
from canaryd.judge.samples import step_error
from canaryd.judge.validate import problems
from canaryd.model.durations import INTERVAL_BOUNDS
from canaryd.model.fields import (
    FieldError,
    read_bool,
    read_bounded_duration,
    read_int,
    read_list,
    read_obj,
    read_opt_float,
    read_opt_obj,
    read_opt_str,
)
from canaryd.model.judge_spec import DEFAULT_STEP, JSON, JudgeMetricSpec, JudgeSpec, NoData
from canaryd.model.spec import CheckPolicy

ISTIO = "istio"  # judge.preset: the three Istio presets (request success rate, latency p50 and p99)
MAX_POINTS = 11_000  # Prometheus refuses a range query with more points per series
MAX_METRICS = 32
_PRESET_TOLERANCE = {presets.SUCCESS_RATE: round(1 - presets.SUCCESS_ALLOWED_DECREASE, 6),
                     presets.LATENCY_P50: round(presets.LATENCY_ALLOWED_INCREASE - 1, 6),
                     presets.LATENCY_P99: round(presets.LATENCY_ALLOWED_INCREASE - 1, 6)}


def _number(v: Any, name: str, default: float) -> float:
    value = read_opt_float(v, name)
    if value is None:
        return default
    if not math.isfinite(value):
        raise FieldError(f"{name} {value} is out of range: must be a finite number")
    return value


def _choice(v: Any, name: str, choices: tuple[str, ...], default: str) -> str:
    if v is None or v == "":
        return default
    if v not in choices:
        raise FieldError(f"{name} {v!r} is unknown; use one of {', '.join(choices)}")
    return str(v)


def _preset_metric(preset: str, name: str) -> JudgeMetricSpec:
    p = presets.istio(preset)
    return JudgeMetricSpec(name=name, query=p.query, direction=p.config.direction,
                           tolerance=_PRESET_TOLERANCE[preset], preset=preset)


def _metric(raw: Any, at: str) -> JudgeMetricSpec:
    m = read_obj(raw, at)
    name = str(m.get("name") or "")
    if not name:
        raise FieldError(f"{at}.name is missing; name the metric (e.g. latency-p99)")
    preset = read_opt_str(m.get("preset"))
    query = read_opt_str(m.get("query"))
    if preset is not None and query is not None:
        raise FieldError(f"{at}: set either preset or query, not both")
    if preset is not None:
        if preset not in presets.PRESETS:
            raise FieldError(f"{at}.preset {preset!r} is unknown; "
                             f"use one of {', '.join(presets.PRESETS)}")
        base = _preset_metric(preset, name)
    elif query is not None:
        base = JudgeMetricSpec(name=name, query=query)
    else:
        raise FieldError(f"{at}: set query (a PromQL template with {{{{ target }}}}) or preset "
                         f"({', '.join(presets.PRESETS)})")
    direction = _choice(m.get("direction"), f"{at}.direction", DIRECTIONS, base.direction)
    tolerance = _number(m.get("tolerance"), f"{at}.tolerance", base.tolerance)
    if tolerance < 0 or (direction != "increase" and tolerance >= 1):
        rule = "0 or more" if direction == "increase" else "at least 0 and below 1"
        raise FieldError(f"{at}.tolerance {tolerance:g} is out of range: must be {rule} "
                         f"(the allowed relative change, 0.15 = 15 %)")
    weight = read_opt_float(m.get("weight"), f"{at}.weight")
    if weight is not None and (not math.isfinite(weight) or not 0 <= weight <= 100):
        raise FieldError(f"{at}.weight {weight:g} is out of range: must be between 0 and 100 "
                         "(its group's share of the score, in %)")
    interval = str(m.get("interval") or "")
    if interval:
        read_bounded_duration(interval, f"{at}.interval", INTERVAL_BOUNDS)
    nodata = _choice(m.get("nodata"), f"{at}.nodata", ("ignore", "fail"), "ignore")
    return JudgeMetricSpec(
        name=name, query=base.query, direction=cast(Direction, direction),
        tolerance=tolerance, weight=weight, critical=read_bool(m.get("critical"), f"{at}.critical"),
        group=str(m.get("group") or ""), nodata=cast(NoData, nodata),
        dry_run=read_bool(m.get("dryRun"), f"{at}.dryRun"), interval=interval,
        template_variables=read_opt_obj(m.get("templateVariables"), f"{at}.templateVariables") or {},
        preset=base.preset)


def _check_step(spec: JudgeSpec, m: JudgeMetricSpec, at: str, judge_at: str) -> None:
    """The step must not be shorter than any range window of the query rendered as it will be sent."""
    values = TemplateVars(name="canary", namespace="namespace", target="target", service="service",
                          interval=spec.interval_of(m),
                          variables={str(k): str(v) for k, v in m.template_variables.items()})
    try:
        rendered = render(m.query, values)
    except RenderError as e:
        raise FieldError(f"{at}.query does not render: {e}") from None
    why = step_error(rendered, round(spec.step_seconds * 1000))
    if why is not None:
        raise FieldError(f"{at}: {why} ({judge_at}.step)")


def read_judge(raw: Any, at: str, read_policy: Callable[[JSON, str], CheckPolicy]) -> JudgeSpec | None:
    """``analysis.judge`` or None when absent; ``read_policy`` reads its verdict options (nodata, dryRun,
    consecutiveErrorLimit, initialDelay) as for every check."""
    if raw is None:
        return None
    j = read_obj(raw, at)
    step = str(j.get("step") or DEFAULT_STEP)
    step_seconds = read_bounded_duration(step, f"{at}.step", INTERVAL_BOUNDS)
    min_samples = read_int(j.get("minSamples"), f"{at}.minSamples", default=DEFAULT_MIN_SAMPLES)
    if not 2 <= min_samples <= 1000:
        raise FieldError(f"{at}.minSamples {min_samples} is out of range: must be between 2 and 1000")
    lookback = step_seconds * min_samples
    if j.get("lookback") not in (None, ""):
        lookback = read_bounded_duration(j.get("lookback"), f"{at}.lookback", INTERVAL_BOUNDS)
    if lookback < step_seconds * min_samples:
        raise FieldError(f"{at}.lookback {j.get('lookback')} is shorter than minSamples x step "
                         f"({min_samples} x {step}): the judge could never have enough samples")
    if lookback / step_seconds + 1 > MAX_POINTS:
        raise FieldError(f"{at}.lookback / step gives more than {MAX_POINTS} points: use a longer step")
    confidence = _number(j.get("confidence"), f"{at}.confidence", DEFAULT_CONFIDENCE)
    if not 0 < confidence < 1:
        raise FieldError(f"{at}.confidence {confidence:g} is out of range: must be strictly between "
                         "0 and 1 (e.g. 0.98)")
    pass_threshold = _number(j.get("pass"), f"{at}.pass", DEFAULT_PASS)
    marginal = _number(j.get("marginal"), f"{at}.marginal", DEFAULT_MARGINAL)
    for label, value in (("pass", pass_threshold), ("marginal", marginal)):
        if not 0 <= value <= 100:
            raise FieldError(f"{at}.{label} {value:g} is out of range: must be between 0 and 100")
    if marginal > pass_threshold:
        raise FieldError(f"{at}.marginal {marginal:g} is above pass {pass_threshold:g}")
    preset = read_opt_str(j.get("preset"))
    if preset is not None and preset != ISTIO:
        raise FieldError(f"{at}.preset {preset!r} is unknown; use {ISTIO} (or name presets per metric)")
    raw_metrics = read_list(j.get("metrics"), f"{at}.metrics")
    if len(raw_metrics) > MAX_METRICS:
        raise FieldError(f"{at}.metrics has {len(raw_metrics)} entries: at most {MAX_METRICS}")
    listed = [_metric(m, f"{at}.metrics[{i}]") for i, m in enumerate(raw_metrics)]
    names = {m.name for m in listed}
    defaults = [_preset_metric(p, p) for p in presets.PRESETS if p not in names] if preset else []
    metrics = tuple(defaults + listed)
    if not metrics:
        raise FieldError(f"{at} judges nothing: set preset: {ISTIO} or list metrics")
    spec = JudgeSpec(metrics=metrics, name=str(j.get("name") or "judge"), step=step,
                     step_seconds=step_seconds, lookback_seconds=lookback, min_samples=min_samples,
                     confidence=confidence,
                     pass_threshold=pass_threshold, marginal_threshold=marginal,
                     policy=read_policy(j, at))
    weights: dict[str, float] = {}
    for i, m in enumerate(listed):
        f = f"{at}.metrics[{i}]"
        _check_step(spec, m, f, at)
        if m.weight is not None:
            if weights.setdefault(m.group_name, m.weight) != m.weight:
                raise FieldError(f"{f}.weight {m.weight:g} differs from another metric of group "
                                 f"{m.group_name!r} ({weights[m.group_name]:g}): a weight is its group's")
    for m in defaults:
        _check_step(spec, m, at, at)
    issues = problems(spec.config(), at)
    if issues:  # what the checks above do not cover: duplicate names, weights adding up past 100
        raise FieldError(issues[0])
    return spec
