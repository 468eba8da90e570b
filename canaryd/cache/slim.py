"""What the watch cache keeps of each object: only what decisions need, so memory stays bounded in
clusters with many large objects and secret contents never sit in canaryd's memory.

* every kind: ``metadata.managedFields`` dropped (often larger than the object itself);
* ConfigMap / Secret: metadata (without the last-applied annotation, which copies the data), ``type``,
  ``immutable``, ``checksum`` = Flagger's config checksum of ``.data`` and ``dataKeys`` (the key
  names) — never the data itself;
* everything else (Canary, Deployment, HPA, Service, VirtualService, DestinationRule): the whole object.
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


def slim_config(obj: dict[str, Any]) -> dict[str, Any]:
    """ConfigMap/Secret → metadata, type, immutable, checksum."""
    meta = obj.get("metadata") or {}
    slim_meta = {k: meta[k] for k in _CONFIG_META if k in meta}
    annotations = slim_meta.get("annotations")
    if isinstance(annotations, dict) and LAST_APPLIED in annotations:
        slim_meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    out: dict[str, Any] = {"apiVersion": obj.get("apiVersion", "v1"), "kind": obj.get("kind", ""),
                           "metadata": slim_meta, "checksum": config_checksum(obj.get("data"))}
    # the key names only (a MetricTemplate's secret is checked for its provider's keys before a run)
    out["dataKeys"] = sorted({str(k) for part in ("data", "binaryData")
                              if isinstance(obj.get(part), Mapping) for k in obj[part]})
    for key in ("type", "immutable"):
        if key in obj:
            out[key] = obj[key]
    return out


SLIMMERS: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]] = MappingProxyType(
    {"ConfigMap": slim_config, "Secret": slim_config}
)


def slim(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The cached form of ``obj`` of ``kind`` (the list response's items carry no ``kind``)."""
    fn = SLIMMERS.get(kind)
    if fn is not None:
        return fn({**obj, "kind": kind})
    return _strip_managed(obj)
