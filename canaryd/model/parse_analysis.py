"""``spec.analysis`` (or the 2019 ``spec.canaryAnalysis``) of a Canary -> :class:`AnalysisSpec`:
steps, thresholds, mirroring, session affinity, and the metrics, webhooks and alerts it runs, with
Flagger's defaults and the legacy metric names mapped to the builtin checks.

Apart from ``parse`` because it is the largest section and the only one with lists of sub-objects.
"""

from __future__ import annotations

from typing import Any

from canaryd.model.fields import (
    Invalid,
    read_bool,
    read_duration,
    read_int,
    read_list,
    read_obj,
    read_obj_list,
    read_opt_float,
    read_opt_obj,
    read_opt_str,
    read_percent,
)
from canaryd.model.spec import JSON, AlertSpec, AnalysisSpec, MetricSpec, ThresholdRange, WebhookSpec

BUILTIN_METRICS = ("request-success-rate", "request-duration")
LEGACY_METRICS = {
    "istio_requests_total": "request-success-rate",
    "istio_request_duration_seconds_bucket": "request-duration",
}
# task types of Flagger's load tester that canaryd's load tester does not run (helm/kubectl need
# binaries and cluster rights, concord/ngrinder external servers): refused up front, not at run time
LOADTESTER_UNSUPPORTED_TASKS = frozenset({"helm", "helmv3", "kubectl", "concord", "ngrinder"})
WEBHOOK_TYPES = (
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
    "rollback",
    "event",
)
ALERT_SEVERITIES = ("", "info", "warn", "error")


def read_analysis(a: JSON, field: str, skip_analysis: bool) -> AnalysisSpec:
    interval = 60.0
    if a.get("interval") not in (None, ""):
        interval = read_duration(a.get("interval"), f"{field}.interval")
        if interval <= 0:
            raise Invalid(f"{field}.interval {a.get('interval')} must be positive, e.g. 30s or 1m")
    threshold = read_int(a.get("threshold"), f"{field}.threshold", default=0)
    if threshold < 0:
        raise Invalid(
            f"{field}.threshold {threshold} is negative; "
            "set the number of failed checks before rollback (>= 1)"
        )
    threshold = threshold or 1
    step_weight = read_int(a.get("stepWeight"), f"{field}.stepWeight", default=0)
    if not 0 <= step_weight <= 100:
        raise Invalid(f"{field}.stepWeight {step_weight} must be between 0 and 100")
    raw_steps = read_list(a.get("stepWeights"), f"{field}.stepWeights")
    step_weights = tuple(read_int(w, f"{field}.stepWeights", default=0) for w in raw_steps)
    for i, w in enumerate(step_weights):
        if not 1 <= w <= 100:
            raise Invalid(f"{field}.stepWeights[{i}] is {w}; each step weight must be between 1 and 100")
        if i and w <= step_weights[i - 1]:
            raise Invalid(
                f"{field}.stepWeights must be strictly increasing, but {w} follows {step_weights[i - 1]}; "
                "list the canary weights in increasing order, e.g. [1, 5, 25, 50]"
            )
    max_weight = read_int(a.get("maxWeight"), f"{field}.maxWeight", default=0)
    if max_weight > 100:
        raise Invalid(f"{field}.maxWeight {max_weight} is above 100; a weight is a percentage (1-100)")
    if max_weight < 0:
        raise Invalid(f"{field}.maxWeight {max_weight} is negative; use a percentage between 1 and 100")
    if step_weights:
        max_weight = min(100, step_weights[-1])
    elif max_weight == 0:
        max_weight = 100
    iterations = read_int(a.get("iterations"), f"{field}.iterations", default=0)
    if iterations < 0:
        raise Invalid(
            f"{field}.iterations {iterations} is negative; use 0 (progressive) or a positive count"
        )
    if step_weight == 0 and not step_weights and iterations == 0 and not skip_analysis:
        raise Invalid(
            f"{field}.stepWeight is 0 and neither stepWeights nor iterations is set, so the canary never "
            "advances; set stepWeight (e.g. 10), stepWeights (e.g. [10, 50]) or iterations"
        )
    swp = read_int(a.get("stepWeightPromotion"), f"{field}.stepWeightPromotion", default=0)
    if not 0 <= swp <= 100:
        raise Invalid(f"{field}.stepWeightPromotion {swp} must be between 0 and 100")
    mirror_weight = read_int(a.get("mirrorWeight"), f"{field}.mirrorWeight", default=0)
    if not 0 <= mirror_weight <= 100:
        raise Invalid(f"{field}.mirrorWeight {mirror_weight} must be between 0 and 100")
    session_affinity = read_opt_obj(a.get("sessionAffinity"), f"{field}.sessionAffinity")
    if session_affinity is not None:
        cookie = session_affinity.get("cookieName")
        if not cookie:
            raise Invalid(f"{field}.sessionAffinity.cookieName is missing; name the canary cookie")
        if cookie == session_affinity.get("primaryCookieName"):
            raise Invalid(
                "can't use the same cookie name for both primary and cookie name; please update them to be "
                f"different ({field}.sessionAffinity.cookieName and primaryCookieName are both {cookie})"
            )
    return AnalysisSpec(
        interval_seconds=interval,
        threshold=threshold,
        max_weight=max_weight,
        step_weight=step_weight,
        step_weights=step_weights,
        step_weight_promotion=swp,
        iterations=iterations,
        mirror=read_bool(a.get("mirror"), f"{field}.mirror"),
        mirror_weight=mirror_weight,
        match=tuple(read_obj_list(a.get("match"), f"{field}.match")),
        primary_ready_threshold=read_percent(a.get("primaryReadyThreshold"),
                                             f"{field}.primaryReadyThreshold"),
        canary_ready_threshold=read_percent(a.get("canaryReadyThreshold"), f"{field}.canaryReadyThreshold"),
        session_affinity=session_affinity,
        metrics=tuple(_metric(m, f"{field}.metrics[{i}]")
                      for i, m in enumerate(read_list(a.get("metrics"), f"{field}.metrics"))),
        webhooks=tuple(_webhook(w, f"{field}.webhooks[{i}]")
                       for i, w in enumerate(read_list(a.get("webhooks"), f"{field}.webhooks"))),
        alerts=tuple(_alert(x, f"{field}.alerts[{i}]")
                     for i, x in enumerate(read_list(a.get("alerts"), f"{field}.alerts"))),
    )


def _metric(raw: Any, field: str) -> MetricSpec:
    m = read_obj(raw, field)
    name = str(m.get("name") or "")
    if not name:
        raise Invalid(f"{field}.name is missing; name the metric (e.g. request-success-rate)")
    interval = str(m.get("interval") or "1m")
    read_duration(interval, f"{field}.interval")
    threshold = read_opt_float(m.get("threshold"), f"{field}.threshold")
    tr_raw = read_opt_obj(m.get("thresholdRange"), f"{field}.thresholdRange")
    threshold_range = None
    if tr_raw is not None:
        lo = read_opt_float(tr_raw.get("min"), f"{field}.thresholdRange.min")
        hi = read_opt_float(tr_raw.get("max"), f"{field}.thresholdRange.max")
        if lo is not None and hi is not None and lo > hi:
            raise Invalid(f"{field}.thresholdRange.min {lo:g} is above max {hi:g}; swap them")
        threshold_range = ThresholdRange(min=lo, max=hi)
    query = read_opt_str(m.get("query"))
    template_ref = read_opt_obj(m.get("templateRef"), f"{field}.templateRef")
    if template_ref is not None and not template_ref.get("name"):
        raise Invalid(f"{field}.templateRef.name is missing; name the MetricTemplate")
    builtin = name if name in BUILTIN_METRICS else LEGACY_METRICS.get(name)
    if builtin is None and query is None and template_ref is None:
        raise Invalid(
            f"metric {name}: Metric query failed for no usable metrics template and query were configured; "
            "set templateRef (a MetricTemplate) or query, or use a builtin name: "
            "request-success-rate, request-duration"
        )
    return MetricSpec(
        name=name,
        interval=interval,
        threshold=threshold,
        threshold_range=threshold_range,
        query=query,
        template_ref=template_ref,
        template_variables=read_opt_obj(m.get("templateVariables"), f"{field}.templateVariables") or {},
        builtin=builtin,
    )


def _webhook(raw: Any, field: str) -> WebhookSpec:
    w = read_obj(raw, field)
    name = str(w.get("name") or "")
    if not name:
        raise Invalid(f"{field}.name is missing; name the webhook")
    url = str(w.get("url") or "")
    if not url:
        raise Invalid(f"{field}.url is missing for webhook {name}; set the URL to POST to")
    wtype = str(w.get("type") or "rollout")
    if wtype not in WEBHOOK_TYPES:
        raise Invalid(
            f"webhook {name}: type {wtype} is unknown; "
            f"use one of {', '.join(WEBHOOK_TYPES)} (or leave it empty)"
        )
    metadata = read_opt_obj(w.get("metadata"), f"{field}.metadata") or {}
    task = str(metadata.get("type") or "")
    if task in LOADTESTER_UNSUPPORTED_TASKS:
        raise Invalid(
            f"webhook {name}: load tester task type {task} is not supported yet; supported: cmd, bash"
        )
    timeout_raw = str(w.get("timeout") or "")
    timeout = read_duration(timeout_raw, f"{field}.timeout") if len(timeout_raw) >= 2 else 10.0
    if timeout <= 0:
        raise Invalid(f"{field}.timeout {timeout_raw} must be positive, e.g. 5s")
    retries = read_int(w.get("retries"), f"{field}.retries", default=0)
    if retries < 0:
        raise Invalid(f"{field}.retries {retries} is negative; use 0 or more")
    return WebhookSpec(
        name=name,
        url=url,
        type=wtype,
        timeout_seconds=timeout,
        retries=retries,
        disable_tls=read_bool(w.get("disableTLS"), f"{field}.disableTLS"),
        mute_alert=read_bool(w.get("muteAlert"), f"{field}.muteAlert"),
        metadata=metadata,
    )


def _alert(raw: Any, field: str) -> AlertSpec:
    a = read_obj(raw, field)
    ref = read_obj(a.get("providerRef") or {}, f"{field}.providerRef")
    if not ref.get("name"):
        raise Invalid(f"{field}.providerRef.name is missing; name the AlertProvider")
    severity = str(a.get("severity") or "")
    if severity not in ALERT_SEVERITIES:
        raise Invalid(f"{field}.severity {severity} is unknown; use info, warn or error")
    return AlertSpec(
        name=str(a.get("name") or ""),
        provider_name=str(ref["name"]),
        provider_namespace=read_opt_str(ref.get("namespace")),
        severity=severity,
    )
