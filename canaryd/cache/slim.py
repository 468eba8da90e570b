"""What the watch cache keeps of each object: only what decisions need, so memory stays bounded in
clusters with many large objects and secret contents never sit in canaryd's memory.

* every kind: ``metadata.managedFields`` dropped (often larger than the object itself);
* ConfigMap / Secret: metadata (without the last-applied annotation, which copies the data), ``type``,
  ``immutable`` and ``checksum`` = Flagger's config checksum of ``.data`` — never the data itself;
* everything else (Canary, Deployment, HPA, Service, VirtualService, DestinationRule): the whole object.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import orjson

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_CONFIG_META = ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                "deletionTimestamp", "labels", "annotations", "ownerReferences", "finalizers")


def go_json(value: Any) -> str:
    """``json.Marshal`` as Go writes it: sorted map keys, no spaces, ``<`` ``>`` ``&`` U+2028 U+2029
    escaped as ``\\u003c`` etc., ``\\b``/``\\f`` short escapes (Go ≥ 1.22), other controls ``\\u00xx``."""
    try:  # orjson escapes exactly as Go does apart from the HTML-safe set below, and is 10x faster
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):  # e.g. lone surrogates: the slow, lenient path
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def config_checksum(data: Mapping[str, str] | None) -> str:
    """Flagger's checksum of a ConfigMap's or Secret's ``.data`` (Secret values are the base64 strings
    the API returns, which is what Go's ``[]byte`` marshals to): hex of the first 8 bytes of sha256.
    Absent or empty data is Go's nil map, marshalled as ``null``."""
    text = go_json(dict(data)) if data else "null"
    return hashlib.sha256(text.encode("utf-8")).digest()[:8].hex()


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
