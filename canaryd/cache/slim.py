"""What the watch cache keeps of each object: only what decisions need, so memory stays bounded in
clusters with many large objects and secret contents never sit in canaryd's memory.

* every kind: ``metadata.managedFields`` dropped (often larger than the object itself);
* ConfigMap / Secret: metadata (without the last-applied annotation, which copies the data), ``type``,
  ``immutable``, ``checksum`` = Flagger's config checksum of ``.data`` and ``dataKeys`` (the key
  names) — never the data itself;
* everything else (Canary, Deployment, HPA, Service, VirtualService, DestinationRule): the whole object.

A kind watched as metadata alone (``kube.resources.METADATA_ONLY``: Secrets) is cached as its metadata
(:func:`slim_metadata`) until canaryd reads the object itself because a Canary references it; the
informer then keeps that richer entry for as long as the watch reports the same version
(:func:`keep_loaded`). :func:`data_loaded` tells them apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from canaryd.model.checksum import config_checksum

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_CONFIG_META = ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                "deletionTimestamp", "labels", "annotations", "ownerReferences", "finalizers")


def _strip_managed(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


def _config_meta(obj: dict[str, Any]) -> dict[str, Any]:
    """The metadata kept: no managed fields, no last-applied annotation (it copies the data)."""
    meta = obj.get("metadata") or {}
    slim_meta = {k: meta[k] for k in _CONFIG_META if k in meta}
    annotations = slim_meta.get("annotations")
    if isinstance(annotations, dict) and LAST_APPLIED in annotations:
        slim_meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return slim_meta


def slim_config(obj: dict[str, Any]) -> dict[str, Any]:
    """ConfigMap/Secret → metadata, type, immutable, checksum."""
    out: dict[str, Any] = {"apiVersion": obj.get("apiVersion", "v1"), "kind": obj.get("kind", ""),
                           "metadata": _config_meta(obj), "checksum": config_checksum(obj.get("data"))}
    # the key names only (a MetricTemplate's secret is checked for its provider's keys before a run)
    out["dataKeys"] = sorted({str(k) for part in ("data", "binaryData")
                              if isinstance(obj.get(part), Mapping) for k in obj[part]})
    for key in ("type", "immutable"):
        if key in obj:
            out[key] = obj[key]
    return out


def slim_metadata(kind: str, api_version: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A ``PartialObjectMetadata`` (or any object: only its metadata is kept) cached as ``kind``: no
    ``checksum``, no ``dataKeys``, no ``type`` — the data is not loaded."""
    return {"apiVersion": api_version, "kind": kind, "metadata": _config_meta(obj)}


def data_loaded(obj: Mapping[str, Any]) -> bool:
    """Whether a cached ConfigMap/Secret carries what decisions read of its data (checksum, key names,
    type), or only its metadata."""
    return "checksum" in obj


def keep_loaded(current: dict[str, Any] | None, fresh: dict[str, Any]) -> dict[str, Any]:
    """What to cache when the watch reports ``fresh`` (metadata alone): the loaded ``current`` while it is
    the same object at the same version (a relist, a repeated event), else ``fresh`` (a change: the data
    may have changed with it and must be read again)."""
    if current is None or not data_loaded(current) or data_loaded(fresh):
        return fresh
    a, b = current.get("metadata") or {}, fresh.get("metadata") or {}
    same = a.get("uid") == b.get("uid") and a.get("resourceVersion") == b.get("resourceVersion")
    return current if same else fresh


SLIMMERS: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]] = MappingProxyType(
    {"ConfigMap": slim_config, "Secret": slim_config}
)


def slim(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The cached form of ``obj`` of ``kind`` (the list response's items carry no ``kind``)."""
    fn = SLIMMERS.get(kind)
    if fn is not None:
        return fn({**obj, "kind": kind})
    return _strip_managed(obj)
