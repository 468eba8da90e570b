"""Desired bodies of the primary side of a Canary (flagger-reference.md §3.5, §4.1), as pure
functions: the ``-primary`` Deployment and what promotion copies onto it, the replicas a run scales the
target to, the ``-primary`` ConfigMap/Secret copies and the primary HPA.

Everything here maps (spec, cached objects, settings) to plain dicts with no I/O, so the exact shapes
Flagger produces are pinned down by table tests, and the writer in ``workloads`` only decides
*whether* to write, never *what*.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from canaryd.actuators.generated import (
    FLAGGER_ID,
    JSON,
    GenerationSettings,
    copied_annotations,
    drop_toolkit,
    include_by_prefix,
    object_meta,
    owner_reference,
    selector_label,
)
from canaryd.model.podconfigs import template_pod_spec
from canaryd.model.primary import primary_name, to_primary_pod_spec
from canaryd.model.spec import CanarySpec

# ---------------------------------------------------------------------------------------------------
# primary Deployment


def _primary_labels(labels: Mapping[str, str] | None, label: str, value: str) -> dict[str, str]:
    return {**(labels or {}), label: primary_name(value)}


def primary_pod_spec(target: Mapping[str, Any], tracked: Iterable[str]) -> JSON:
    """Target pod spec with tracked config refs renamed ``-primary`` and anti-affinity /
    topology-spread selectors that name the target renamed to the primary
    (:func:`canaryd.model.primary.to_primary_pod_spec`)."""
    name = str(target.get("metadata", {}).get("name", ""))
    return to_primary_pod_spec(template_pod_spec(target), name, tracked)


def primary_template(target: Mapping[str, Any], label: str, value: str, tracked: Iterable[str],
                     flagger_id: str) -> JSON:
    """The primary's pod template: what both creation and promotion write (§3.5)."""
    tmeta = target.get("spec", {}).get("template", {}).get("metadata") or {}
    annotations = {**drop_toolkit(tmeta.get("annotations")), FLAGGER_ID: flagger_id}
    return {
        "metadata": {
            "labels": _primary_labels(tmeta.get("labels"), label, value),
            "annotations": annotations,
        },
        "spec": primary_pod_spec(target, tracked),
    }


_COPIED_SPEC_FIELDS = ("progressDeadlineSeconds", "minReadySeconds", "revisionHistoryLimit", "strategy")


def primary_deployment(spec: CanarySpec, target: Mapping[str, Any], settings: GenerationSettings, *,
                       tracked: Iterable[str], flagger_id: str) -> JSON:
    """``<target>-primary`` as created at initialization (§4.1)."""
    label, value = selector_label(target, settings.selector_labels)
    tmeta = target.get("metadata", {})
    tspec = target.get("spec", {})
    replicas = tspec.get("replicas")
    body_spec: JSON = {k: copy.deepcopy(tspec[k]) for k in _COPIED_SPEC_FIELDS if k in tspec}
    body_spec.update({
        "replicas": replicas if isinstance(replicas, int) and replicas > 0 else 1,
        "selector": {"matchLabels": {label: primary_name(value)}},
        "template": primary_template(target, label, value, tracked, flagger_id),
    })
    kept = include_by_prefix(tmeta.get("labels"), settings.include_label_prefix)
    labels = _primary_labels(kept, label, value)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(spec, spec.primary_name, labels,
                                copied_annotations(tmeta.get("annotations"))),
        "spec": body_spec,
    }


def promotion(spec: CanarySpec, target: Mapping[str, Any], settings: GenerationSettings, *,
              tracked: Iterable[str], flagger_id: str) -> JSON:
    """What promotion copies onto the primary (§3.5): ``{"spec": {...}, "labels": {...},
    "annotations": {...}}``; labels/annotations are merged into the primary's, never removed."""
    label, value = selector_label(target, settings.selector_labels)
    tmeta = target.get("metadata", {})
    tspec = target.get("spec", {})
    out_spec: JSON = {k: copy.deepcopy(tspec[k]) for k in _COPIED_SPEC_FIELDS if k in tspec}
    out_spec.setdefault("minReadySeconds", 0)
    if spec.autoscaler is None and isinstance(tspec.get("replicas"), int):
        out_spec["replicas"] = tspec["replicas"]
    out_spec["template"] = primary_template(target, label, value, tracked, flagger_id)
    return {
        "spec": out_spec,
        "labels": _primary_labels(include_by_prefix(tmeta.get("labels"), settings.include_label_prefix),
                                  label, value),
        "annotations": include_by_prefix(tmeta.get("annotations"), settings.include_label_prefix),
    }


def canary_replicas(spec: CanarySpec, target: Mapping[str, Any], hpa: Mapping[str, Any] | None,
                    primary: Mapping[str, Any] | None = None) -> int:
    """Replicas the target is scaled up to when a run starts (Flagger's ``ScaleFromZero``, §4.1)."""
    replicas = target.get("spec", {}).get("replicas")
    if isinstance(replicas, int) and replicas > 0:
        return replicas
    if spec.autoscaler is not None:
        if hpa is not None:
            low = hpa.get("spec", {}).get("minReplicas")
            if isinstance(low, int) and low > 1:
                return low
        return 1
    if primary is not None:
        prim = primary.get("spec", {}).get("replicas")
        if isinstance(prim, int) and prim > 0:
            return prim
    return 1


# ---------------------------------------------------------------------------------------------------
# config copies and primary HPA


def config_copy(spec: CanarySpec, source: Mapping[str, Any], settings: GenerationSettings) -> JSON:
    """``<name>-primary`` copy of a full ConfigMap or Secret (read on demand: the cache holds no data)."""
    meta = source.get("metadata", {})
    kind = source.get("kind") or ("Secret" if "type" in source else "ConfigMap")
    owners = [owner_reference(spec)] + [
        {**r, "controller": False}
        for r in meta.get("ownerReferences") or []
        if r.get("kind") != "Canary"
    ]
    out_meta: JSON = {"name": primary_name(str(meta.get("name"))), "namespace": spec.namespace}
    labels = include_by_prefix(meta.get("labels"), settings.include_label_prefix)
    if labels:
        out_meta["labels"] = labels
    annotations = copied_annotations(meta.get("annotations"))
    if annotations:
        out_meta["annotations"] = annotations
    out_meta["ownerReferences"] = owners
    body: JSON = {"apiVersion": "v1", "kind": kind, "metadata": out_meta}
    if kind == "Secret":
        body["type"] = source.get("type", "Opaque")
    for key in ("data", "binaryData"):
        if source.get(key):
            body[key] = copy.deepcopy(source[key])
    return body


def primary_hpa(spec: CanarySpec, target_hpa: Mapping[str, Any], settings: GenerationSettings,
                *, promoting: bool = False) -> JSON:
    """``<autoscaler>-primary`` (autoscaling/v2) scaling the primary. Metadata: the target HPA's minus
    toolkit keys on creation, filtered by ``-include-label-prefix`` when synced at promotion."""
    src = target_hpa.get("spec", {})
    ref = src.get("scaleTargetRef") or {}
    hpa_spec: JSON = {
        "scaleTargetRef": {
            "apiVersion": ref.get("apiVersion", "apps/v1"),
            "kind": ref.get("kind", "Deployment"),
            "name": spec.primary_name,
        },
        "maxReplicas": src.get("maxReplicas"),
    }
    for key in ("minReplicas", "metrics", "behavior"):
        if src.get(key) is not None:
            hpa_spec[key] = copy.deepcopy(src[key])
    ref_spec = spec.autoscaler
    if ref_spec is not None and ref_spec.primary_min_replicas is not None:  # primaryScalerReplicas
        hpa_spec["minReplicas"] = ref_spec.primary_min_replicas
    if ref_spec is not None and ref_spec.primary_max_replicas is not None:
        hpa_spec["maxReplicas"] = ref_spec.primary_max_replicas
    meta = target_hpa.get("metadata", {})
    name = primary_name(spec.autoscaler.name if spec.autoscaler else str(meta.get("name")))
    if promoting:
        labels = include_by_prefix(meta.get("labels"), settings.include_label_prefix)
        annotations = include_by_prefix(meta.get("annotations"), settings.include_label_prefix)
    else:
        labels, annotations = drop_toolkit(meta.get("labels")), copied_annotations(meta.get("annotations"))
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": object_meta(spec, name, labels, annotations),
        "spec": hpa_spec,
    }
