"""``spec.analysis`` (or the 2019 ``spec.canaryAnalysis``) of a Canary -> :class:`AnalysisSpec`:
steps, thresholds, mirroring, session affinity, and the metrics, webhooks and alerts it runs, with
Flagger's defaults and the legacy metric names mapped to the builtin checks.

Apart from ``parse`` because it is the largest section and the only one with lists of sub-objects.
"""

from __future__ import annotations

from typing import Any, get_args

from canaryd.model.durations import (
    INCONCLUSIVE_TIMEOUT_BOUNDS,
    INITIAL_DELAY_BOUNDS,
    INTERVAL_BOUNDS,
    WEBHOOK_TIMEOUT_BOUNDS,
)
from canaryd.model.fields import (
    FieldError,
    read_bool,
    read_bounded_duration,
    read_int,
    read_list,
    read_obj,
    read_obj_list,
    read_opt_float,
    read_opt_obj,
    read_opt_str,
    read_percent,
)
from canaryd.model.parse_judge import read_judge
from canaryd.model.spec import (
    DEFAULT_POLICY,
    JSON,
    AlertSeverity,
    AlertSpec,
    AnalysisSpec,
    CheckPolicy,
    HookType,
    MetricSpec,
    NodataMode,
    ThresholdRange,
    WebhookSpec,
)

SUCCESS_RATE = "request-success-rate"
DURATION = "request-duration"
# the one classification of builtin checks: by name, as Flagger matches them, plus the 2019 (v1alpha3)
# names as aliases so tutorial manifests keep working
BUILTIN_METRICS = {
    SUCCESS_RATE: SUCCESS_RATE,
    DURATION: DURATION,
    "istio_requests_total": SUCCESS_RATE,
    "istio_request_duration_seconds_bucket": DURATION,
}


def builtin_metric(name: str) -> str | None:
    """``request-success-rate`` / ``request-duration`` when a metric of this name is a builtin check."""
    return BUILTIN_METRICS.get(name)
# task types of Flagger's load tester that canaryd's load tester does not run (helm/kubectl need
# binaries and cluster rights, concord/ngrinder external servers): refused up front, not at run time
LOADTESTER_UNSUPPORTED_TASKS = frozenset({"helm", "helmv3", "kubectl", "concord", "ngrinder"})
WEBHOOK_TYPES: tuple[HookType, ...] = get_args(HookType)
ALERT_SEVERITIES: tuple[AlertSeverity, ...] = get_args(AlertSeverity)
WEBHOOK_MAX_RETRIES = 10
NODATA_MODES: tuple[NodataMode, ...] = get_args(NodataMode)
# canaryd's verdict options of a check (docs/verdicts.md), read by read_check_policy
POLICY_FIELDS = ("consecutiveErrorLimit", "nodata", "dryRun", "initialDelay")


def read_analysis(a: JSON, field: str, skip_analysis: bool) -> AnalysisSpec:
    interval = 60.0
    if a.get("interval") not in (None, ""):
        interval = read_bounded_duration(a.get("interval"), f"{field}.interval", INTERVAL_BOUNDS)
    threshold = read_int(a.get("threshold"), f"{field}.threshold", default=0)
    if threshold < 0:
        raise FieldError(
            f"{field}.threshold {threshold} is negative; "
            "set the number of failed checks before rollback (>= 1)"
        )
    threshold = threshold or 1
    step_weight = read_int(a.get("stepWeight"), f"{field}.stepWeight", default=0)
    if not 0 <= step_weight <= 100:
        raise FieldError(f"{field}.stepWeight {step_weight} must be between 0 and 100")
    raw_steps = read_list(a.get("stepWeights"), f"{field}.stepWeights")
    step_weights = tuple(read_int(w, f"{field}.stepWeights", default=0) for w in raw_steps)
    for i, w in enumerate(step_weights):
        if not 1 <= w <= 100:
            raise FieldError(f"{field}.stepWeights[{i}] is {w}; each step weight must be between 1 and 100")
        if i and w <= step_weights[i - 1]:
            raise FieldError(
                f"{field}.stepWeights must be strictly increasing, but {w} follows {step_weights[i - 1]}; "
                "list the canary weights in increasing order, e.g. [1, 5, 25, 50]"
            )
    max_weight = read_int(a.get("maxWeight"), f"{field}.maxWeight", default=0)
    if max_weight > 100:
        raise FieldError(f"{field}.maxWeight {max_weight} is above 100; a weight is a percentage (1-100)")
    if max_weight < 0:
        raise FieldError(f"{field}.maxWeight {max_weight} is negative; use a percentage between 1 and 100")
    if step_weights:
        max_weight = min(100, step_weights[-1])
    elif max_weight == 0:
        max_weight = 100
    iterations = read_int(a.get("iterations"), f"{field}.iterations", default=0)
    if iterations < 0:
        raise FieldError(
            f"{field}.iterations {iterations} is negative; use 0 (progressive) or a positive count"
        )
    if step_weight == 0 and not step_weights and iterations == 0 and not skip_analysis:
        raise FieldError(
            f"{field}.stepWeight is 0 and neither stepWeights nor iterations is set, so the canary never "
            "advances; set stepWeight (e.g. 10), stepWeights (e.g. [10, 50]) or iterations"
        )
    swp = read_int(a.get("stepWeightPromotion"), f"{field}.stepWeightPromotion", default=0)
    if not 0 <= swp <= 100:
        raise FieldError(f"{field}.stepWeightPromotion {swp} must be between 0 and 100")
    mirror_weight = read_int(a.get("mirrorWeight"), f"{field}.mirrorWeight", default=0)
    if not 0 <= mirror_weight <= 100:
        raise FieldError(f"{field}.mirrorWeight {mirror_weight} must be between 0 and 100")
    session_affinity = read_opt_obj(a.get("sessionAffinity"), f"{field}.sessionAffinity")
    if session_affinity is not None:
        cookie = session_affinity.get("cookieName")
        if not cookie:
            raise FieldError(f"{field}.sessionAffinity.cookieName is missing; name the canary cookie")
        if cookie == session_affinity.get("primaryCookieName"):
            raise FieldError(
                "can't use the same cookie name for both primary and cookie name; please update them to be "
                f"different ({field}.sessionAffinity.cookieName and primaryCookieName are both {cookie})"
            )
    timeout_raw = a.get("inconclusiveTimeout")
    inconclusive_timeout = (None if timeout_raw in (None, "") else read_bounded_duration(
        timeout_raw, f"{field}.inconclusiveTimeout", INCONCLUSIVE_TIMEOUT_BOUNDS))
    return AnalysisSpec(
        inconclusive_timeout_seconds=inconclusive_timeout,
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
        judge=read_judge(a.get("judge"), f"{field}.judge", read_check_policy),
    )


def _metric(raw: Any, field: str) -> MetricSpec:
    m = read_obj(raw, field)
    name = str(m.get("name") or "")
    if not name:
        raise FieldError(f"{field}.name is missing; name the metric (e.g. request-success-rate)")
    interval = m.get("interval") or "1m"
    read_bounded_duration(interval, f"{field}.interval", INTERVAL_BOUNDS)
    threshold = read_opt_float(m.get("threshold"), f"{field}.threshold")
    tr_raw = read_opt_obj(m.get("thresholdRange"), f"{field}.thresholdRange")
    threshold_range = None
    if tr_raw is not None:
        threshold_range = _range(tr_raw, f"{field}.thresholdRange")
    query = read_opt_str(m.get("query"))
    template_ref = read_opt_obj(m.get("templateRef"), f"{field}.templateRef")
    if template_ref is not None and not template_ref.get("name"):
        raise FieldError(f"{field}.templateRef.name is missing; name the MetricTemplate")
    builtin = builtin_metric(name)
    if builtin is None and query is None and template_ref is None:
        raise FieldError(
            f"metric {name}: Metric query failed for no usable metrics template and query were configured; "
            "set templateRef (a MetricTemplate) or query, or use a builtin name: "
            "request-success-rate, request-duration"
        )
    inconclusive_raw = read_opt_obj(m.get("inconclusiveRange"), f"{field}.inconclusiveRange")
    inconclusive = None
    if inconclusive_raw is not None:
        if builtin is not None:
            raise FieldError(f"{field}.inconclusiveRange is set on the builtin check {name}; an inconclusive "
                             "range applies to MetricTemplate and query metrics only")
        inconclusive = _range(inconclusive_raw, f"{field}.inconclusiveRange")
        if inconclusive.min is None and inconclusive.max is None:
            raise FieldError(f"{field}.inconclusiveRange has neither min nor max; set at least one bound")
    return MetricSpec(
        policy=read_check_policy(m, field),
        inconclusive_range=inconclusive,
        name=name,
        interval=str(interval),
        threshold=threshold,
        threshold_range=threshold_range,
        query=query,
        template_ref=template_ref,
        template_variables=read_opt_obj(m.get("templateVariables"), f"{field}.templateVariables") or {},
        builtin=builtin,
    )


def _range(raw: JSON, field: str) -> ThresholdRange:
    lo = read_opt_float(raw.get("min"), f"{field}.min")
    hi = read_opt_float(raw.get("max"), f"{field}.max")
    if lo is not None and hi is not None and lo > hi:
        raise FieldError(f"{field}.min {lo:g} is above max {hi:g}; swap them")
    return ThresholdRange(min=lo, max=hi)


def read_check_policy(raw: JSON, field: str) -> CheckPolicy:
    """canaryd's verdict options of a check object (a metric, a rollout webhook, the judge): the
    defaults are Flagger's behaviour; a bad value names its field."""
    limit = read_int(raw.get("consecutiveErrorLimit"), f"{field}.consecutiveErrorLimit", default=1)
    if limit < 1:
        raise FieldError(f"{field}.consecutiveErrorLimit {limit} must be at least 1 (1: every error counts "
                         "as a failed check, as in Flagger)")
    nodata = next((n for n in NODATA_MODES if n == (raw.get("nodata") or "fail")), None)
    if nodata is None:
        raise FieldError(f"{field}.nodata {raw.get('nodata')} is unknown; use fail (the default) or ignore")
    delay_raw = raw.get("initialDelay")
    delay = (0.0 if delay_raw in (None, "") else
             read_bounded_duration(delay_raw, f"{field}.initialDelay", INITIAL_DELAY_BOUNDS))
    return CheckPolicy(consecutive_error_limit=limit, nodata=nodata,
                       dry_run=read_bool(raw.get("dryRun"), f"{field}.dryRun"), initial_delay_seconds=delay)


def _webhook(raw: Any, field: str) -> WebhookSpec:
    w = read_obj(raw, field)
    name = str(w.get("name") or "")
    if not name:
        raise FieldError(f"{field}.name is missing; name the webhook")
    url = str(w.get("url") or "")
    if not url:
        raise FieldError(f"{field}.url is missing for webhook {name}; set the URL to POST to")
    wtype = next((t for t in WEBHOOK_TYPES if t == str(w.get("type") or "rollout")), None)
    if wtype is None:
        raise FieldError(
            f"webhook {name}: type {w.get('type')} is unknown; "
            f"use one of {', '.join(WEBHOOK_TYPES)} (or leave it empty)"
        )
    metadata = read_opt_obj(w.get("metadata"), f"{field}.metadata") or {}
    task = str(metadata.get("type") or "")
    if task in LOADTESTER_UNSUPPORTED_TASKS:
        raise FieldError(
            f"webhook {name}: load tester task type {task} is not supported yet; supported: cmd, bash"
        )
    timeout_raw = str(w.get("timeout") or "")
    # the CRD's syntax and bounds (WEBHOOK_TIMEOUT_BOUNDS); shorter than two characters: 10s, as Flagger
    timeout = (read_bounded_duration(timeout_raw, f"{field}.timeout", WEBHOOK_TIMEOUT_BOUNDS)
               if len(timeout_raw) >= 2 else 10.0)
    retries = read_int(w.get("retries"), f"{field}.retries", default=0)
    if retries < 0:
        raise FieldError(f"{field}.retries {retries} is negative; use 0 or more")
    if retries > WEBHOOK_MAX_RETRIES:
        raise FieldError(f"{field}.retries {retries} is out of bounds: it must be between 0 and 10")
    policy = read_check_policy(w, field)
    if policy != DEFAULT_POLICY and wtype != "rollout":
        used = next(f for f in POLICY_FIELDS if w.get(f) is not None)
        raise FieldError(f"{field}.{used} is set on webhook {name} of type {wtype}; verdict options apply "
                         "to rollout webhooks (the checks of each step) only")
    return WebhookSpec(
        policy=policy,
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
        raise FieldError(f"{field}.providerRef.name is missing; name the AlertProvider")
    severity = next((s for s in ALERT_SEVERITIES if s == str(a.get("severity") or "")), None)
    if severity is None:
        raise FieldError(f"{field}.severity {a.get('severity')} is unknown; use info, warn or error")
    return AlertSpec(
        name=str(a.get("name") or ""),
        provider_name=str(ref["name"]),
        provider_namespace=read_opt_str(ref.get("namespace")),
        severity=severity,
    )
