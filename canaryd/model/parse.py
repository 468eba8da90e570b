"""Raw Canary dict -> defaulted, validated :class:`CanarySpec`, or a :class:`SpecError` that says
exactly what is wrong and how to fix it.

Both ``flagger.app/v1beta1`` and the 2019 ``v1alpha3`` shape (``canaryAnalysis``, legacy metric
names) are read here, so no other layer ever looks at the raw spec. Defaults follow Flagger
(flagger-behaviour.md §1) except the 10 s interval floor, which canaryd does not apply.
"""

from __future__ import annotations

from typing import Any

from canaryd.model.durations import DurationError, parse_go_duration
from canaryd.model.spec import (
    JSON,
    AlertSpec,
    AnalysisSpec,
    AutoscalerRef,
    CanarySpec,
    MetricSpec,
    ServiceSpec,
    SpecError,
    TargetRef,
    ThresholdRange,
    WebhookSpec,
)

DEFAULT_SELECTOR_LABELS: tuple[str, ...] = ("app", "name", "app.kubernetes.io/name")
SUPPORTED_API_VERSIONS = ("flagger.app/v1beta1", "flagger.app/v1alpha3")
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


class _Invalid(Exception):
    """Internal: carries the user-facing message out of the nested readers."""


def parse_canary(
    obj: dict[str, Any], *, selector_labels: tuple[str, ...] = DEFAULT_SELECTOR_LABELS
) -> CanarySpec | SpecError:
    """Read a Canary object (as returned by the API server). Never raises.

    ``selector_labels`` is accepted so callers pass the process setting in one place; the
    selector label itself is found on the target Deployment, not in the Canary."""
    del selector_labels  # the label is looked up on the Deployment (engine snapshot), not here
    try:
        return _parse(obj)
    except _Invalid as e:
        return SpecError(str(e))


def _parse(obj: dict[str, Any]) -> CanarySpec:
    if not isinstance(obj, dict):
        raise _Invalid("the Canary is not a JSON object")
    api_version = str(obj.get("apiVersion") or "flagger.app/v1beta1")
    if api_version not in SUPPORTED_API_VERSIONS:
        raise _Invalid(
            f"apiVersion {api_version} is not supported; "
            "use flagger.app/v1beta1 (or the 2019 flagger.app/v1alpha3)"
        )
    meta = _obj(obj.get("metadata"), "metadata")
    spec = _obj(obj.get("spec"), "spec")
    name = str(meta.get("name") or "")
    namespace = str(meta.get("namespace") or "")

    provider = str(spec.get("provider") or "istio")
    if provider != "istio":
        raise _Invalid(f"spec.provider {provider} is not supported; supported: istio (or leave it unset)")

    target = _target_ref(spec.get("targetRef"))
    autoscaler = _autoscaler_ref(spec.get("autoscalerRef"))
    service = _service(spec.get("service"), target.name)
    skip_analysis = _bool(spec.get("skipAnalysis"), "spec.skipAnalysis")

    raw_analysis = spec.get("analysis")
    field = "spec.analysis"
    if raw_analysis is None and spec.get("canaryAnalysis") is not None:
        raw_analysis, field = spec.get("canaryAnalysis"), "spec.canaryAnalysis"
    if raw_analysis is None:
        raise _Invalid(
            "spec.analysis is missing: add an analysis with interval, threshold and one of stepWeight, "
            "stepWeights or iterations (spec.canaryAnalysis is accepted as the 2019 alias)"
        )
    analysis = _analysis(_obj(raw_analysis, field), field, skip_analysis)

    deadline = _int(spec.get("progressDeadlineSeconds"), "spec.progressDeadlineSeconds", default=600)
    if deadline <= 0:
        deadline = 600

    return CanarySpec(
        name=name,
        namespace=namespace,
        uid=str(meta.get("uid") or ""),
        generation=_int(meta.get("generation"), "metadata.generation", default=0),
        target=target,
        service=service,
        analysis=analysis,
        autoscaler=autoscaler,
        provider=provider,
        metrics_server=_opt_str(spec.get("metricsServer")),
        progress_deadline_seconds=deadline,
        skip_analysis=skip_analysis,
        revert_on_deletion=_bool(spec.get("revertOnDeletion"), "spec.revertOnDeletion"),
        suspend=_bool(spec.get("suspend"), "spec.suspend"),
        api_version=api_version,
    )


# ---- sections ----


def _target_ref(raw: Any) -> TargetRef:
    if raw is None:
        raise _Invalid(
            "spec.targetRef is missing: set {apiVersion: apps/v1, kind: Deployment, name: <deployment>}"
        )
    ref = _obj(raw, "spec.targetRef")
    kind = str(ref.get("kind") or "")
    tname = str(ref.get("name") or "")
    if not tname:
        raise _Invalid("spec.targetRef.name is missing: name the Deployment to release")
    if kind == "DaemonSet":
        raise _Invalid("DaemonSet targets are not supported yet; supported kinds: Deployment")
    if kind != "Deployment":
        raise _Invalid(
            f"spec.targetRef.kind {kind or '(empty)'} is not supported; supported kinds: Deployment"
        )
    return TargetRef(api_version=str(ref.get("apiVersion") or "apps/v1"), kind=kind, name=tname)


def _autoscaler_ref(raw: Any) -> AutoscalerRef | None:
    if raw is None:
        return None
    ref = _obj(raw, "spec.autoscalerRef")
    kind = str(ref.get("kind") or "")
    aname = str(ref.get("name") or "")
    if kind == "ScaledObject":
        raise _Invalid(
            "spec.autoscalerRef kind ScaledObject (KEDA) is not supported yet; "
            "supported: HorizontalPodAutoscaler"
        )
    if kind != "HorizontalPodAutoscaler":
        raise _Invalid(
            f"spec.autoscalerRef.kind {kind or '(empty)'} is not supported; "
            "supported: HorizontalPodAutoscaler"
        )
    if not aname:
        raise _Invalid("spec.autoscalerRef.name is missing: name the HorizontalPodAutoscaler of the target")
    api_version = str(ref.get("apiVersion") or "autoscaling/v2")
    if not api_version.startswith("autoscaling/"):
        raise _Invalid(
            f"spec.autoscalerRef.apiVersion {api_version} is not an autoscaling API version; "
            "use autoscaling/v2"
        )
    # v2beta1 / v2beta2 (the 2019 tutorial) and v1 name the same object, read through autoscaling/v2.
    return AutoscalerRef(api_version="autoscaling/v2", kind=kind, name=aname)


def _service(raw: Any, target_name: str) -> ServiceSpec:
    if raw is None:
        raise _Invalid("spec.service is missing: set at least spec.service.port (the port the app serves on)")
    svc = _obj(raw, "spec.service")
    if svc.get("port") is None:
        raise _Invalid("spec.service.port is missing: set the port the app serves on (e.g. 9898)")
    port = _int(svc.get("port"), "spec.service.port", default=0)
    if not 1 <= port <= 65535:
        raise _Invalid(f"spec.service.port {port} is out of range; use a port between 1 and 65535")
    target_port: int | str | None = svc.get("targetPort")
    if target_port in (0, "", None):
        target_port = None
    elif not isinstance(target_port, (int, str)) or isinstance(target_port, bool):
        raise _Invalid("spec.service.targetPort must be a port number or a port name")
    gateways = tuple(_str_list(svc.get("gateways"), "spec.service.gateways")) or ("mesh",)
    hosts = tuple(_str_list(svc.get("hosts"), "spec.service.hosts"))
    delegation = _bool(svc.get("delegation"), "spec.service.delegation")
    if delegation and (svc.get("hosts") or svc.get("gateways")):
        raise _Invalid(
            "spec.service.delegation is true but hosts or gateways are set: a delegate VirtualService cannot "
            "have hosts and gateways; remove them or set delegation: false"
        )
    return ServiceSpec(
        name=str(svc.get("name") or target_name),
        port=port,
        port_name=str(svc.get("portName") or "http"),
        target_port=target_port,
        app_protocol=_opt_str(svc.get("appProtocol")),
        port_discovery=_bool(svc.get("portDiscovery"), "spec.service.portDiscovery"),
        gateways=gateways,
        hosts=hosts,
        delegation=delegation,
        timeout=_opt_str(svc.get("timeout")),
        match=tuple(_obj_list(svc.get("match"), "spec.service.match")),
        rewrite=_opt_obj(svc.get("rewrite"), "spec.service.rewrite"),
        retries=_opt_obj(svc.get("retries"), "spec.service.retries"),
        headers=_opt_obj(svc.get("headers"), "spec.service.headers"),
        cors_policy=_opt_obj(svc.get("corsPolicy"), "spec.service.corsPolicy"),
        traffic_policy=_opt_obj(svc.get("trafficPolicy"), "spec.service.trafficPolicy"),
        headless=_bool(svc.get("headless"), "spec.service.headless"),
        apex=_opt_obj(svc.get("apex"), "spec.service.apex"),
        primary=_opt_obj(svc.get("primary"), "spec.service.primary"),
        canary=_opt_obj(svc.get("canary"), "spec.service.canary"),
    )


def _analysis(a: JSON, field: str, skip_analysis: bool) -> AnalysisSpec:
    interval = 60.0
    if a.get("interval") not in (None, ""):
        interval = _duration(a.get("interval"), f"{field}.interval")
        if interval <= 0:
            raise _Invalid(f"{field}.interval {a.get('interval')} must be positive, e.g. 30s or 1m")
    threshold = _int(a.get("threshold"), f"{field}.threshold", default=0)
    if threshold < 0:
        raise _Invalid(
            f"{field}.threshold {threshold} is negative; "
            "set the number of failed checks before rollback (>= 1)"
        )
    threshold = threshold or 1
    step_weight = _int(a.get("stepWeight"), f"{field}.stepWeight", default=0)
    if not 0 <= step_weight <= 100:
        raise _Invalid(f"{field}.stepWeight {step_weight} must be between 0 and 100")
    step_weights = tuple(_int(w, f"{field}.stepWeights", default=0) for w in _list(a.get("stepWeights"),
                                                                                   f"{field}.stepWeights"))
    for i, w in enumerate(step_weights):
        if not 1 <= w <= 100:
            raise _Invalid(f"{field}.stepWeights[{i}] is {w}; each step weight must be between 1 and 100")
        if i and w <= step_weights[i - 1]:
            raise _Invalid(
                f"{field}.stepWeights must be strictly increasing, but {w} follows {step_weights[i - 1]}; "
                "list the canary weights in increasing order, e.g. [1, 5, 25, 50]"
            )
    max_weight = _int(a.get("maxWeight"), f"{field}.maxWeight", default=0)
    if max_weight > 100:
        raise _Invalid(f"{field}.maxWeight {max_weight} is above 100; a weight is a percentage (1-100)")
    if max_weight < 0:
        raise _Invalid(f"{field}.maxWeight {max_weight} is negative; use a percentage between 1 and 100")
    if step_weights:
        max_weight = min(100, step_weights[-1])
    elif max_weight == 0:
        max_weight = 100
    iterations = _int(a.get("iterations"), f"{field}.iterations", default=0)
    if iterations < 0:
        raise _Invalid(
            f"{field}.iterations {iterations} is negative; use 0 (progressive) or a positive count"
        )
    if step_weight == 0 and not step_weights and iterations == 0 and not skip_analysis:
        raise _Invalid(
            f"{field}.stepWeight is 0 and neither stepWeights nor iterations is set, so the canary never "
            "advances; set stepWeight (e.g. 10), stepWeights (e.g. [10, 50]) or iterations"
        )
    swp = _int(a.get("stepWeightPromotion"), f"{field}.stepWeightPromotion", default=0)
    if not 0 <= swp <= 100:
        raise _Invalid(f"{field}.stepWeightPromotion {swp} must be between 0 and 100")
    mirror_weight = _int(a.get("mirrorWeight"), f"{field}.mirrorWeight", default=0)
    if not 0 <= mirror_weight <= 100:
        raise _Invalid(f"{field}.mirrorWeight {mirror_weight} must be between 0 and 100")
    session_affinity = _opt_obj(a.get("sessionAffinity"), f"{field}.sessionAffinity")
    if session_affinity is not None:
        cookie = session_affinity.get("cookieName")
        if not cookie:
            raise _Invalid(f"{field}.sessionAffinity.cookieName is missing; name the canary cookie")
        if cookie == session_affinity.get("primaryCookieName"):
            raise _Invalid(
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
        mirror=_bool(a.get("mirror"), f"{field}.mirror"),
        mirror_weight=mirror_weight,
        match=tuple(_obj_list(a.get("match"), f"{field}.match")),
        primary_ready_threshold=_percent(a.get("primaryReadyThreshold"), f"{field}.primaryReadyThreshold"),
        canary_ready_threshold=_percent(a.get("canaryReadyThreshold"), f"{field}.canaryReadyThreshold"),
        session_affinity=session_affinity,
        metrics=tuple(_metric(m, f"{field}.metrics[{i}]") for i, m in enumerate(_list(a.get("metrics"),
                                                                                      f"{field}.metrics"))),
        webhooks=tuple(_webhook(w, f"{field}.webhooks[{i}]") for i, w in enumerate(_list(a.get("webhooks"),
                                                                                       f"{field}.webhooks"))),
        alerts=tuple(_alert(x, f"{field}.alerts[{i}]") for i, x in enumerate(_list(a.get("alerts"),
                                                                                   f"{field}.alerts"))),
    )


def _metric(raw: Any, field: str) -> MetricSpec:
    m = _obj(raw, field)
    name = str(m.get("name") or "")
    if not name:
        raise _Invalid(f"{field}.name is missing; name the metric (e.g. request-success-rate)")
    interval = str(m.get("interval") or "1m")
    _duration(interval, f"{field}.interval")
    threshold = _opt_float(m.get("threshold"), f"{field}.threshold")
    tr_raw = _opt_obj(m.get("thresholdRange"), f"{field}.thresholdRange")
    threshold_range = None
    if tr_raw is not None:
        lo = _opt_float(tr_raw.get("min"), f"{field}.thresholdRange.min")
        hi = _opt_float(tr_raw.get("max"), f"{field}.thresholdRange.max")
        if lo is not None and hi is not None and lo > hi:
            raise _Invalid(f"{field}.thresholdRange.min {lo:g} is above max {hi:g}; swap them")
        threshold_range = ThresholdRange(min=lo, max=hi)
    query = _opt_str(m.get("query"))
    template_ref = _opt_obj(m.get("templateRef"), f"{field}.templateRef")
    if template_ref is not None and not template_ref.get("name"):
        raise _Invalid(f"{field}.templateRef.name is missing; name the MetricTemplate")
    builtin = name if name in BUILTIN_METRICS else LEGACY_METRICS.get(name)
    if builtin is None and query is None and template_ref is None:
        raise _Invalid(
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
        template_variables=_opt_obj(m.get("templateVariables"), f"{field}.templateVariables") or {},
        builtin=builtin,
    )


def _webhook(raw: Any, field: str) -> WebhookSpec:
    w = _obj(raw, field)
    name = str(w.get("name") or "")
    if not name:
        raise _Invalid(f"{field}.name is missing; name the webhook")
    url = str(w.get("url") or "")
    if not url:
        raise _Invalid(f"{field}.url is missing for webhook {name}; set the URL to POST to")
    wtype = str(w.get("type") or "rollout")
    if wtype not in WEBHOOK_TYPES:
        raise _Invalid(
            f"webhook {name}: type {wtype} is unknown; "
            f"use one of {', '.join(WEBHOOK_TYPES)} (or leave it empty)"
        )
    metadata = _opt_obj(w.get("metadata"), f"{field}.metadata") or {}
    task = str(metadata.get("type") or "")
    if task in LOADTESTER_UNSUPPORTED_TASKS:
        raise _Invalid(
            f"webhook {name}: load tester task type {task} is not supported yet; supported: cmd, bash"
        )
    timeout_raw = str(w.get("timeout") or "")
    timeout = _duration(timeout_raw, f"{field}.timeout") if len(timeout_raw) >= 2 else 10.0
    if timeout <= 0:
        raise _Invalid(f"{field}.timeout {timeout_raw} must be positive, e.g. 5s")
    retries = _int(w.get("retries"), f"{field}.retries", default=0)
    if retries < 0:
        raise _Invalid(f"{field}.retries {retries} is negative; use 0 or more")
    return WebhookSpec(
        name=name,
        url=url,
        type=wtype,
        timeout_seconds=timeout,
        retries=retries,
        disable_tls=_bool(w.get("disableTLS"), f"{field}.disableTLS"),
        mute_alert=_bool(w.get("muteAlert"), f"{field}.muteAlert"),
        metadata=metadata,
    )


def _alert(raw: Any, field: str) -> AlertSpec:
    a = _obj(raw, field)
    ref = _obj(a.get("providerRef") or {}, f"{field}.providerRef")
    if not ref.get("name"):
        raise _Invalid(f"{field}.providerRef.name is missing; name the AlertProvider")
    severity = str(a.get("severity") or "")
    if severity not in ALERT_SEVERITIES:
        raise _Invalid(f"{field}.severity {severity} is unknown; use info, warn or error")
    return AlertSpec(
        name=str(a.get("name") or ""),
        provider_name=str(ref["name"]),
        provider_namespace=_opt_str(ref.get("namespace")),
        severity=severity,
    )


# ---- scalar readers: each names the field in its error ----


def _obj(v: Any, field: str) -> JSON:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise _Invalid(f"{field} must be an object")
    return v


def _opt_obj(v: Any, field: str) -> JSON | None:
    return None if v is None else _obj(v, field)


def _list(v: Any, field: str) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise _Invalid(f"{field} must be a list")
    return v


def _obj_list(v: Any, field: str) -> list[JSON]:
    return [_obj(x, f"{field}[{i}]") for i, x in enumerate(_list(v, field))]


def _str_list(v: Any, field: str) -> list[str]:
    out = []
    for i, x in enumerate(_list(v, field)):
        if not isinstance(x, str):
            raise _Invalid(f"{field}[{i}] must be a string")
        out.append(x)
    return out


def _opt_str(v: Any) -> str | None:
    return None if v in (None, "") else str(v)


def _bool(v: Any, field: str) -> bool:
    if v is None:
        return False
    if not isinstance(v, bool):
        raise _Invalid(f"{field} must be true or false")
    return v


def _int(v: Any, field: str, *, default: int) -> int:
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Invalid(f"{field} must be a whole number, got {v!r}")
    if isinstance(v, float) and not v.is_integer():
        raise _Invalid(f"{field} must be a whole number, got {v!r}")
    return int(v)


def _opt_float(v: Any, field: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Invalid(f"{field} must be a number, got {v!r}")
    return float(v)


def _percent(v: Any, field: str) -> int:
    p = _int(v, field, default=0) or 100
    if not 0 < p <= 100:
        raise _Invalid(f"{field} {p} must be a percentage between 1 and 100")
    return p


def _duration(v: Any, field: str) -> float:
    try:
        return parse_go_duration(str(v))
    except DurationError:
        raise _Invalid(
            f"{field} {v} is not a duration; write it as a number and a unit, e.g. 30s, 1m or 1m30s"
        ) from None
