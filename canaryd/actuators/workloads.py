"""Idempotent writers of the workloads: primary Deployment, ``-primary`` config copies, primary HPA,
scaling, and promotion (flagger-reference.md §3.5, §4.1).

Reads come from the Store; a write is sent only when the cached object differs from the desired one.
Everything that can make generation fail (selector label, missing mandatory config, missing HPA) is
checked by :func:`prepare` before the first write, so a bad target never leaves half-made objects.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from canaryd.actuators import primary_objects
from canaryd.actuators.generated import GenerationError, GenerationSettings, selector_label
from canaryd.actuators.primary_objects import canary_replicas
from canaryd.actuators.writes import JSON, Log, create, field_ops, get_or_none, patch, pointer
from canaryd.cache.store import Store
from canaryd.kube.client import KubeClient
from canaryd.kube.errors import ApiError
from canaryd.kube.resources import CONFIGMAP, DEPLOYMENT, HPA, SECRET
from canaryd.model.podconfigs import ConfigRef, config_tracking_enabled, pod_config_refs, template_pod_spec
from canaryd.model.primary import primary_name
from canaryd.model.spec import CanarySpec

__all__ = [
    "ActuatorError",
    "GenerationError",
    "Prepared",
    "canary_replicas",
    "ensure_config_copies",
    "ensure_primary",
    "ensure_primary_hpa",
    "prepare",
    "promote",
    "scale",
]

_SERVER_DEFAULTS = {"minReadySeconds": 0}  # the API server omits these when zero
_CONFIG_RES = {"configmap": CONFIGMAP, "secret": SECRET}


class ActuatorError(Exception):
    """A write the API server refused; ``str()`` is Flagger's wording, the ApiError is the cause."""


@dataclass(frozen=True)
class Prepared:
    """A target found valid for generation, with what every writer needs from it."""

    target: JSON
    label: str
    value: str
    tracked: tuple[ConfigRef, ...]  # configs that exist and are tracked; get ``-primary`` copies

    @property
    def tracked_keys(self) -> tuple[str, ...]:
        return tuple(ref.key for ref in self.tracked)


def _missing(kind: str, name: str, namespace: str, plural: str) -> GenerationError:
    """Flagger's wording for a referenced object that does not exist."""
    return GenerationError(f'{kind} {name}.{namespace} get query error: {plural} "{name}" not found')


def _target(store: Store, spec: CanarySpec) -> JSON:
    target = store.get(DEPLOYMENT.kind, spec.namespace, spec.target.name)
    if target is None:
        raise GenerationError(
            f"deployment {spec.target.name}.{spec.namespace} get query error: "
            f'deployments.apps "{spec.target.name}" not found'
        )
    return target


def prepare(store: Store, spec: CanarySpec, settings: GenerationSettings) -> Prepared:
    """Validate from the cache everything generation needs (target and its selector label, mandatory
    configs, the autoscaler's HPA); raise GenerationError before any write."""
    target = _target(store, spec)
    label, value = selector_label(target, settings.selector_labels)
    tracked: list[ConfigRef] = []
    if settings.config_tracking:
        for ref in pod_config_refs(template_pod_spec(target)):
            res = _CONFIG_RES[ref.kind]
            obj = store.get(res.kind, spec.namespace, ref.name)
            if obj is None:
                if ref.optional:
                    continue
                raise _missing(ref.kind, ref.name, spec.namespace, res.plural)
            if config_tracking_enabled(ref.kind, obj):
                tracked.append(ref)
    if spec.autoscaler is not None and target_hpa(store, spec) is None:
        raise _missing("HorizontalPodAutoscaler", spec.autoscaler.name, spec.namespace,
                       "horizontalpodautoscalers.autoscaling")
    return Prepared(target, label, value, tuple(tracked))


async def ensure_config_copies(client: KubeClient, store: Store, spec: CanarySpec,
                               settings: GenerationSettings, log: Log, *, sync: bool = False,
                               prepared: Prepared | None = None) -> int:
    """Create missing ``-primary`` copies; with ``sync`` (promotion) also refresh copies whose checksum
    differs from the source's. The source's data is read on demand (the cache holds none).
    Returns the number of writes."""
    prep = prepared or prepare(store, spec, settings)
    writes = 0
    for ref in prep.tracked:
        res = _CONFIG_RES[ref.kind]
        copy_name = primary_name(ref.name)
        live = store.get(res.kind, spec.namespace, copy_name)
        if live is not None and not sync:
            continue
        source_slim = store.get(res.kind, spec.namespace, ref.name) or {}
        if live is not None and live.get("checksum") == source_slim.get("checksum"):
            continue
        source = await get_or_none(client, res, spec.namespace, ref.name)
        if source is None:
            if ref.optional:
                continue
            raise _missing(ref.kind, ref.name, spec.namespace, res.plural)
        body = primary_objects.config_copy(spec, {**source, "kind": res.kind}, settings)
        if live is None:
            _, created = await create(client, store, res, body, log, spec.key)
            if created:
                writes += 1
                continue
            if not sync:
                continue
            live = store.get(res.kind, spec.namespace, copy_name)
        ops = [op for key in ("data", "binaryData") for op in field_ops(live or {}, body, key)]
        ops += field_ops(live or {}, body, "metadata", "labels")
        if ops:
            try:
                await patch(client, store, res, spec.namespace, copy_name, ops, patch_type="json")
            except ApiError as err:
                msg = f"updating {ref.kind} {copy_name}.{spec.namespace} failed: {err}"
                raise ActuatorError(msg) from err
            log.info(f"{res.kind} {copy_name}.{spec.namespace} updated", extra={"canary": spec.key})
            writes += 1
    return writes


async def ensure_primary(client: KubeClient, store: Store, spec: CanarySpec, settings: GenerationSettings,
                         log: Log, *, flagger_id: str | None = None) -> bool:
    """Create ``<target>-primary`` (config copies first) when absent. Like Flagger, an existing primary
    is left alone here: only promotion changes it. Returns whether it was created."""
    prep = prepare(store, spec, settings)
    if store.get(DEPLOYMENT.kind, spec.namespace, spec.primary_name) is not None:
        return False
    await ensure_config_copies(client, store, spec, settings, log, prepared=prep)
    body = primary_objects.primary_deployment(spec, prep.target, settings, tracked=prep.tracked_keys,
                                       flagger_id=flagger_id or str(uuid.uuid4()))
    try:
        _, created = await create(client, store, DEPLOYMENT, body, log, spec.key)
    except ApiError as err:
        msg = f"creating deployment {spec.primary_name}.{spec.namespace} failed: {err}"
        raise ActuatorError(msg) from err
    return created


def _hpa_name(spec: CanarySpec) -> str:
    return primary_name(spec.autoscaler.name) if spec.autoscaler else ""


def target_hpa(store: Store, spec: CanarySpec) -> JSON | None:
    """The target's HPA from the cache (any ``autoscalerRef`` apiVersion is read as autoscaling/v2)."""
    if spec.autoscaler is None:
        return None
    return store.get(HPA.kind, spec.namespace, spec.autoscaler.name)


async def ensure_primary_hpa(client: KubeClient, store: Store, spec: CanarySpec,
                             settings: GenerationSettings, log: Log, *, sync: bool = False) -> bool:
    """Create ``<autoscaler>-primary`` when missing; with ``sync`` (promotion / skip path) also bring
    min/max/metrics/behavior and metadata in line with the target HPA. Returns whether it wrote."""
    if spec.autoscaler is None:
        return False
    source = target_hpa(store, spec)
    if source is None:
        raise _missing("HorizontalPodAutoscaler", spec.autoscaler.name, spec.namespace,
                       "horizontalpodautoscalers.autoscaling")
    desired = primary_objects.primary_hpa(spec, source, settings, promoting=sync)
    live = store.get(HPA.kind, spec.namespace, _hpa_name(spec))
    if live is None:
        _, created = await create(client, store, HPA, desired, log, spec.key)
        return created
    if not sync:
        return False
    ops = [op for key in ("minReplicas", "maxReplicas", "metrics", "behavior")
           for op in field_ops(live, desired, "spec", key)]
    for key in ("labels", "annotations"):
        want = desired["metadata"].get(key) or {}
        if (live.get("metadata", {}).get(key) or {}) != want:
            ops.append({"op": "add", "path": pointer("metadata", key), "value": want})
    if not ops:
        return False
    await patch(client, store, HPA, spec.namespace, _hpa_name(spec), ops, patch_type="json")
    log.info(f"HorizontalPodAutoscaler {_hpa_name(spec)}.{spec.namespace} updated",
             extra={"canary": spec.key})
    return True


async def scale(client: KubeClient, store: Store, namespace: str, name: str, replicas: int) -> bool:
    """Merge-patch ``spec.replicas``; nothing is sent when the cache already shows that count."""
    cached = store.get(DEPLOYMENT.kind, namespace, name)
    if cached is not None and cached.get("spec", {}).get("replicas") == replicas:
        return False
    try:
        await patch(client, store, DEPLOYMENT, namespace, name, {"spec": {"replicas": replicas}})
    except ApiError as err:
        raise ActuatorError(f"scaling {name}.{namespace} to {replicas} failed: {err}") from err
    return True


def _metadata_ops(live: Mapping[str, Any], key: str, wanted: Mapping[str, str]) -> list[JSON]:
    have = live.get("metadata", {}).get(key)
    if have is None:
        return [{"op": "add", "path": pointer("metadata", key), "value": dict(wanted)}] if wanted else []
    return [{"op": "add", "path": pointer("metadata", key, k), "value": v}
            for k, v in wanted.items() if have.get(k) != v]


async def promote(client: KubeClient, store: Store, spec: CanarySpec, settings: GenerationSettings,
                  log: Log, *, flagger_id: str | None = None) -> bool:
    """Copy the target's template (config refs renamed, fresh ``flagger-id``) and rollout fields to the
    primary after syncing the config copies, then sync the primary HPA. A ``flagger_id`` derived from
    the run makes a replay after a crash a no-op; the default (a new uuid) always rolls the primary.
    Returns whether the primary was written."""
    prep = prepare(store, spec, settings)
    primary = store.get(DEPLOYMENT.kind, spec.namespace, spec.primary_name)
    if primary is None:
        raise GenerationError(
            f"deployment {spec.primary_name}.{spec.namespace} get query error: "
            f'deployments.apps "{spec.primary_name}" not found'
        )
    await ensure_config_copies(client, store, spec, settings, log, sync=True, prepared=prep)
    want = primary_objects.promotion(spec, prep.target, settings, tracked=prep.tracked_keys,
                              flagger_id=flagger_id or str(uuid.uuid4()))
    live_spec = primary.get("spec") or {}
    ops: list[JSON] = [
        {"op": "add", "path": pointer("spec", key), "value": value}
        for key, value in want["spec"].items()
        if live_spec.get(key, _SERVER_DEFAULTS.get(key)) != value
    ]
    ops += _metadata_ops(primary, "labels", want["labels"])
    ops += _metadata_ops(primary, "annotations", want["annotations"])
    wrote = False
    if ops:
        try:
            await patch(client, store, DEPLOYMENT, spec.namespace, spec.primary_name, ops, patch_type="json")
        except ApiError as err:
            raise ActuatorError(
                f"updating deployment {spec.primary_name}.{spec.namespace} template spec failed: {err}"
            ) from err
        wrote = True
    await ensure_primary_hpa(client, store, spec, settings, log, sync=True)
    return wrote

