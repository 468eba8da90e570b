"""What counts as a new revision: a stable hash of the target's pod template, the checksums of the
ConfigMaps/Secrets its pods use, and the normalisation needed to take over Flagger's status.

The pod-template hash is canaryd's own (canonical JSON, sha256, prefix ``cd1:``): Flagger's hash
(FNV over a Go struct dump) cannot be reproduced outside Go, so foreign hashes are recognised by
their missing prefix and re-baselined by comparing templates instead. Config checksums are
computed exactly as Flagger does (flagger-reference.md §3.3), so they carry over unchanged.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from canaryd.model.checksum import config_checksum as config_checksum  # re-exported: one definition
from canaryd.model.podconfigs import ConfigRef, config_tracking_enabled
from canaryd.model.primary import from_primary_pod_spec, source_name

HASH_PREFIX = "cd1:"
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


def normalise_primary_template(primary_tmpl: Mapping[str, Any], selector_label: str, target_name: str,
                               tracked: Iterable[str]) -> dict[str, Any]:
    """The primary's pod template with what promotion changes undone, so it can be compared with the
    target's: selector label value ``<v>-primary`` → ``<v>``; the pod spec's renames undone by
    :func:`canaryd.model.primary.from_primary_pod_spec` (tracked config references, anti-affinity /
    topology-spread selectors naming the primary); the ``flagger-id`` annotation and
    ``*toolkit.fluxcd.io*`` annotations removed."""
    t: dict[str, Any] = copy.deepcopy(dict(primary_tmpl))
    meta = t.get("metadata")
    if isinstance(meta, dict):
        labels = meta.get("labels")
        if isinstance(labels, dict) and isinstance(labels.get(selector_label), str):
            value = labels[selector_label]
            labels[selector_label] = source_name(value) or value
        _drop_promotion_annotations(meta)
    spec = t.get("spec")
    if isinstance(spec, dict):
        t["spec"] = from_primary_pod_spec(spec, target_name, tracked)
    return t


def normalise_target_template(target_tmpl: Mapping[str, Any]) -> dict[str, Any]:
    """The target's template without the annotations promotion never copies."""
    t: dict[str, Any] = copy.deepcopy(dict(target_tmpl))
    meta = t.get("metadata")
    if isinstance(meta, dict):
        _drop_promotion_annotations(meta)
    return t


def templates_match(target_tmpl: Mapping[str, Any], primary_tmpl: Mapping[str, Any], selector_label: str, *,
                    target_name: str, tracked: Iterable[str]) -> bool:
    """True when the primary runs what the target describes (``Snapshot.primary_template_matches_target``).
    ``tracked``: keys of the tracked configs (those promotion renamed)."""
    return pod_template_hash(normalise_target_template(target_tmpl)) == pod_template_hash(
        normalise_primary_template(primary_tmpl, selector_label, target_name, tracked)
    )


def _drop_promotion_annotations(meta: dict[str, Any]) -> None:
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        for k in [k for k in annotations if k == FLAGGER_ID or "toolkit.fluxcd.io" in k]:
            del annotations[k]
        if not annotations:
            del meta["annotations"]
