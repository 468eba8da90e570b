"""Raw Canary dict -> defaulted, validated :class:`CanarySpec`, or a :class:`SpecError` that says
exactly what is wrong and how to fix it.

Both ``flagger.app/v1beta1`` and the 2019 ``v1alpha3`` shape (``canaryAnalysis``, legacy metric
names) are read here and in ``parse_service``/``parse_analysis`` (with the field readers of ``fields``),
so no other layer ever looks at the raw spec. Defaults follow Flagger
(docs/compatibility.md) except the 10 s interval floor: canaryd honours intervals down to 1 s.
"""

from __future__ import annotations

from typing import Any

from canaryd.model import coverage, defaults
from canaryd.model.fields import FieldError, parse_time, read_bool, read_int, read_obj, read_opt_str
from canaryd.model.parse_analysis import read_analysis
from canaryd.model.parse_service import read_service
from canaryd.model.references import check_references
from canaryd.model.spec import AutoscalerRef, CanarySpec, SpecError, TargetRef

SUPPORTED_API_VERSIONS = ("flagger.app/v1beta1", "flagger.app/v1alpha3")
MAX_PROGRESS_DEADLINE_SECONDS = 86_400  # the CRD's maximum too


def parse_canary(
    obj: dict[str, Any],
    *,
    selector_labels: tuple[str, ...] = defaults.SELECTOR_LABELS,
    cross_namespace_refs: bool = True,
) -> CanarySpec | SpecError:
    """Read a Canary object (as returned by the API server). Never raises.

    ``selector_labels`` is accepted so callers pass the process setting in one place; the
    selector label itself is found on the target Deployment, not in the Canary.
    ``cross_namespace_refs=False`` is ``--no-cross-namespace-refs`` (:mod:`canaryd.model.references`)."""
    del selector_labels  # the label is looked up on the Deployment (engine snapshot), not here
    try:
        return _parse(obj, cross_namespace_refs)
    except FieldError as e:
        return SpecError(str(e))


def _parse(obj: dict[str, Any], cross_namespace_refs: bool = True) -> CanarySpec:
    if not isinstance(obj, dict):
        raise FieldError("the Canary is not a JSON object")
    api_version = str(obj.get("apiVersion") or "flagger.app/v1beta1")
    if api_version not in SUPPORTED_API_VERSIONS:
        raise FieldError(
            f"apiVersion {api_version} is not supported; "
            "use flagger.app/v1beta1 (or the 2019 flagger.app/v1alpha3)"
        )
    meta = read_obj(obj.get("metadata"), "metadata")
    spec = read_obj(obj.get("spec"), "spec")
    name = str(meta.get("name") or "")
    namespace = str(meta.get("namespace") or "")

    provider = str(spec.get("provider") or "istio")
    if provider != "istio":
        raise FieldError(f"spec.provider {provider} is not supported; supported: istio (or leave it unset)")

    target = _target_ref(spec.get("targetRef"))
    autoscaler = _autoscaler_ref(spec.get("autoscalerRef"))
    service = read_service(spec.get("service"), target.name)
    skip_analysis = read_bool(spec.get("skipAnalysis"), "spec.skipAnalysis")

    raw_analysis = spec.get("analysis")
    field = "spec.analysis"
    if raw_analysis is None and spec.get("canaryAnalysis") is not None:
        raw_analysis, field = spec.get("canaryAnalysis"), "spec.canaryAnalysis"
    if raw_analysis is None:
        # Flagger skips the analysis whenever there is none: the new revision is promoted at once
        skip_analysis = True
    analysis = read_analysis(read_obj(raw_analysis, field), field, skip_analysis)
    check_references(namespace, analysis, field, allow_cross_namespace=cross_namespace_refs)

    deadline = read_int(spec.get("progressDeadlineSeconds"), "spec.progressDeadlineSeconds", default=600)
    if deadline <= 0:
        deadline = 600
    if deadline > MAX_PROGRESS_DEADLINE_SECONDS:
        raise FieldError(
            f"spec.progressDeadlineSeconds {deadline} is out of bounds: it must be at most "
            f"{MAX_PROGRESS_DEADLINE_SECONDS} (24h)"
        )

    return CanarySpec(
        name=name,
        namespace=namespace,
        uid=str(meta.get("uid") or ""),
        generation=read_int(meta.get("generation"), "metadata.generation", default=0),
        created_at=parse_time(meta.get("creationTimestamp")),
        target=target,
        service=service,
        analysis=analysis,
        autoscaler=autoscaler,
        provider=provider,
        metrics_server=read_opt_str(spec.get("metricsServer")),
        progress_deadline_seconds=deadline,
        skip_analysis=skip_analysis,
        revert_on_deletion=read_bool(spec.get("revertOnDeletion"), "spec.revertOnDeletion"),
        suspend=read_bool(spec.get("suspend"), "spec.suspend"),
        api_version=api_version,
        ignored_fields=coverage.ignored_fields(obj),
    )


# ---- sections ----


def _target_ref(raw: Any) -> TargetRef:
    if raw is None:
        raise FieldError(
            "spec.targetRef is missing: set {apiVersion: apps/v1, kind: Deployment, name: <deployment>}"
        )
    ref = read_obj(raw, "spec.targetRef")
    kind = str(ref.get("kind") or "")
    tname = str(ref.get("name") or "")
    if not tname:
        raise FieldError("spec.targetRef.name is missing: name the Deployment to release")
    if kind == "DaemonSet":
        raise FieldError("DaemonSet targets are not supported yet; supported kinds: Deployment")
    if kind != "Deployment":
        raise FieldError(
            f"spec.targetRef.kind {kind or '(empty)'} is not supported; supported kinds: Deployment"
        )
    return TargetRef(api_version=str(ref.get("apiVersion") or "apps/v1"), kind=kind, name=tname)


def _autoscaler_ref(raw: Any) -> AutoscalerRef | None:
    if raw is None:
        return None
    ref = read_obj(raw, "spec.autoscalerRef")
    kind = str(ref.get("kind") or "")
    aname = str(ref.get("name") or "")
    if kind == "ScaledObject":
        raise FieldError(
            "spec.autoscalerRef kind ScaledObject (KEDA) is not supported yet; "
            "supported: HorizontalPodAutoscaler"
        )
    if kind != "HorizontalPodAutoscaler":
        raise FieldError(
            f"spec.autoscalerRef.kind {kind or '(empty)'} is not supported; "
            "supported: HorizontalPodAutoscaler"
        )
    if not aname:
        raise FieldError("spec.autoscalerRef.name is missing: name the HorizontalPodAutoscaler of the target")
    api_version = str(ref.get("apiVersion") or "autoscaling/v2")
    if not api_version.startswith("autoscaling/"):
        raise FieldError(
            f"spec.autoscalerRef.apiVersion {api_version} is not an autoscaling API version; "
            "use autoscaling/v2"
        )
    # v2beta1 / v2beta2 (the 2019 tutorial) and v1 name the same object, read through autoscaling/v2.
    replicas = read_obj(ref.get("primaryScalerReplicas"), "spec.autoscalerRef.primaryScalerReplicas")
    bounds = [_opt_replicas(replicas.get(k), f"spec.autoscalerRef.primaryScalerReplicas.{k}")
              for k in ("minReplicas", "maxReplicas")]
    if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
        raise FieldError(
            f"spec.autoscalerRef.primaryScalerReplicas.minReplicas {bounds[0]} is above maxReplicas "
            f"{bounds[1]}; swap them"
        )
    return AutoscalerRef(api_version="autoscaling/v2", kind=kind, name=aname,
                         primary_min_replicas=bounds[0], primary_max_replicas=bounds[1])


def _opt_replicas(v: Any, field: str) -> int | None:
    if v is None:
        return None
    n = read_int(v, field, default=0)
    if n < 1:
        raise FieldError(f"{field} {n} must be at least 1")
    return n
