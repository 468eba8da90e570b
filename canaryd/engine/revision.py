"""What counts as a new revision: a stable hash of the target's pod template, the checksums of the
ConfigMaps/Secrets its pods use, and the normalisation needed to take over Flagger's status.

The pod-template hash is canaryd's own (canonical JSON, sha256, prefix ``cd1:``): Flagger's hash
(FNV over a Go struct dump) cannot be reproduced outside Go, so foreign hashes are recognised by
their missing prefix and re-baselined by comparing templates instead. Config checksums are
computed exactly as Flagger does (flagger-behaviour.md §3.3), so they carry over unchanged.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from canaryd.model.checksum import config_checksum as config_checksum  # re-exported: one definition
from canaryd.model.podconfigs import ConfigRef, config_tracking_enabled

HASH_PREFIX = "cd1:"
PRIMARY_SUFFIX = "-primary"
FLAGGER_ID = "flagger-id"


# ---- pod template hash ----


def pod_template_hash(template: Mapping[str, Any]) -> str:
    """``cd1:`` + 16 hex chars of sha256 over the template as canonical JSON (sorted keys, no
    whitespace). Every field counts; replicas are outside the template, so scaling never triggers."""
    raw = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    return HASH_PREFIX + hashlib.sha256(raw).hexdigest()[:16]


def is_own_hash(h: str) -> bool:
    """True for hashes canaryd computed (anything else came from Flagger or a hand edit)."""
    return h.startswith(HASH_PREFIX)


# ---- the configs a pod uses (canaryd.model.podconfigs) ----


def tracked_checksums(
    refs: tuple[ConfigRef, ...], objects: Mapping[str, Mapping[str, Any] | None]
) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """Snapshot values ``(config_checksums, config_error)`` from the cached objects.

    ``objects`` maps :attr:`ConfigRef.key` to the cached (slim) object carrying ``checksum``, or None
    when absent. Missing optional refs and untracked objects are skipped; a missing mandatory one is
    an error naming it."""
    pairs: list[tuple[str, str]] = []
    for ref in refs:
        obj = objects.get(ref.key)
        if obj is None:
            if ref.optional:
                continue
            kind = "ConfigMap" if ref.kind == "configmap" else "Secret"
            return (), (
                f"{kind} {ref.name} used by the pod template does not exist; create it, or mark the "
                "reference optional: true"
            )
        if not config_tracking_enabled(ref.kind, obj):
            continue
        pairs.append((ref.key, str(obj.get("checksum") or "")))
    return tuple(sorted(pairs)), None


# ---- takeover of Flagger-written status ----


def normalise_primary_template(primary_tmpl: Mapping[str, Any], selector_label: str) -> dict[str, Any]:
    """The primary's pod template with what promotion changes undone, so it can be compared with the
    target's: selector label value ``<v>-primary`` → ``<v>``; config references ``<n>-primary`` →
    ``<n>``; affinity / topology-spread label selectors on the selector label likewise; the
    ``flagger-id`` annotation and ``*toolkit.fluxcd.io*`` annotations removed."""
    t: dict[str, Any] = copy.deepcopy(dict(primary_tmpl))
    meta = t.get("metadata")
    if isinstance(meta, dict):
        labels = meta.get("labels")
        if isinstance(labels, dict) and isinstance(labels.get(selector_label), str):
            labels[selector_label] = _unsuffix(labels[selector_label])
        _drop_promotion_annotations(meta)
    spec = t.get("spec")
    if isinstance(spec, dict):
        _rename_config_refs(spec)
        _unsuffix_selectors(spec, selector_label)
    return t


def normalise_target_template(target_tmpl: Mapping[str, Any]) -> dict[str, Any]:
    """The target's template without the annotations promotion never copies."""
    t: dict[str, Any] = copy.deepcopy(dict(target_tmpl))
    meta = t.get("metadata")
    if isinstance(meta, dict):
        _drop_promotion_annotations(meta)
    return t


def templates_match(
    target_tmpl: Mapping[str, Any], primary_tmpl: Mapping[str, Any], selector_label: str
) -> bool:
    """True when the primary runs what the target describes (``Snapshot.primary_template_matches_target``)."""
    return pod_template_hash(normalise_target_template(target_tmpl)) == pod_template_hash(
        normalise_primary_template(primary_tmpl, selector_label)
    )


def _drop_promotion_annotations(meta: dict[str, Any]) -> None:
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        for k in [k for k in annotations if k == FLAGGER_ID or "toolkit.fluxcd.io" in k]:
            del annotations[k]
        if not annotations:
            del meta["annotations"]


def _rename_config_refs(spec: dict[str, Any]) -> None:
    def fix(ref: Any, field: str = "name") -> None:
        if isinstance(ref, dict) and isinstance(ref.get(field), str):
            ref[field] = _unsuffix(ref[field])

    for vol in _list(spec.get("volumes")):
        fix(vol.get("configMap"))
        fix(vol.get("secret"), "secretName")
        projected = vol.get("projected")
        if isinstance(projected, dict):
            for src in _list(projected.get("sources")):
                fix(src.get("configMap"))
                fix(src.get("secret"))
    for container in _list(spec.get("containers")) + _list(spec.get("initContainers")):
        for env in _list(container.get("env")):
            value_from = env.get("valueFrom")
            if isinstance(value_from, dict):
                fix(value_from.get("configMapKeyRef"))
                fix(value_from.get("secretKeyRef"))
        for env_from in _list(container.get("envFrom")):
            fix(env_from.get("configMapRef"))
            fix(env_from.get("secretRef"))


def _unsuffix_selectors(spec: dict[str, Any], selector_label: str) -> None:
    selectors: list[Any] = []
    affinity = spec.get("affinity")
    if isinstance(affinity, dict):
        for kind in ("podAffinity", "podAntiAffinity"):
            a = affinity.get(kind)
            if not isinstance(a, dict):
                continue
            for term in _list(a.get("requiredDuringSchedulingIgnoredDuringExecution")):
                selectors.append(term.get("labelSelector"))
            for weighted in _list(a.get("preferredDuringSchedulingIgnoredDuringExecution")):
                term = weighted.get("podAffinityTerm")
                if isinstance(term, dict):
                    selectors.append(term.get("labelSelector"))
    for constraint in _list(spec.get("topologySpreadConstraints")):
        selectors.append(constraint.get("labelSelector"))
    for sel in selectors:
        if not isinstance(sel, dict):
            continue
        match_labels = sel.get("matchLabels")
        if isinstance(match_labels, dict) and isinstance(match_labels.get(selector_label), str):
            match_labels[selector_label] = _unsuffix(match_labels[selector_label])
        for expr in _list(sel.get("matchExpressions")):
            if expr.get("key") == selector_label and isinstance(expr.get("values"), list):
                expr["values"] = [_unsuffix(v) if isinstance(v, str) else v for v in expr["values"]]


def _unsuffix(name: str) -> str:
    return name[: -len(PRIMARY_SUFFIX)] if name.endswith(PRIMARY_SUFFIX) else name


def _list(v: Any) -> list[Any]:
    return [x for x in v if isinstance(x, Mapping)] if isinstance(v, list) else []
