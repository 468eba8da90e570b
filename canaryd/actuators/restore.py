"""What ``revertOnDeletion`` writes to the apex Service and the VirtualService, as pure functions
(JSON-patch operations from the cached object; flagger-reference.md §3.9).

* A taken-over object (no ownerReference to this Canary) gets back the spec saved when it was taken
  over: kubectl's ``last-applied-configuration`` first (as Flagger), else canaryd's/Flagger's
  ``flagger.kubernetes.io/original-configuration``. A Service gets its selector and ports back (the only
  fields canaryd changes on it); without a saved spec its selector is pointed at the target's pods, as
  Flagger does. A VirtualService gets its whole spec back; without a saved spec it is left alone
  (Flagger's warning). The annotations canaryd added for the takeover are removed.
* A generated apex Service is *released*: its ownerReference to the Canary is removed and it selects the
  target's pods, so the application's address keeps working once the garbage collector removes the rest
  (Flagger lets it be collected). A generated VirtualService routes everything to the apex host until
  it is collected, so no request goes to a ``-primary`` Service that is being removed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from canaryd.actuators.generated import KUBECTL_LAST_APPLIED, ORIGINAL_CONFIGURATION, TOOLKIT_DISABLED
from canaryd.actuators.writes import pointer
from canaryd.model.spec import CanarySpec

JSON = dict[str, Any]


def saved_spec(obj: Mapping[str, Any]) -> JSON | None:
    """The spec recorded before the takeover, or None (also when the annotation is not valid JSON)."""
    ann = obj.get("metadata", {}).get("annotations") or {}
    try:
        if KUBECTL_LAST_APPLIED in ann:
            applied = json.loads(ann[KUBECTL_LAST_APPLIED])
            spec = applied.get("spec") if isinstance(applied, dict) else None
            return spec if isinstance(spec, dict) else None
        if ORIGINAL_CONFIGURATION in ann:
            spec = json.loads(ann[ORIGINAL_CONFIGURATION])
            return spec if isinstance(spec, dict) else None
    except ValueError:
        return None
    return None


def _owner_index(obj: Mapping[str, Any], spec: CanarySpec) -> int | None:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return next((i for i, r in enumerate(refs) if r.get("kind") == "Canary" and r.get("name") == spec.name),
                None)


def _drop_annotations(obj: Mapping[str, Any], keys: Mapping[str, str | None]) -> list[JSON]:
    """Remove annotation ``k`` when present (and, when ``keys[k]`` is a value, only while it has it)."""
    ann = obj.get("metadata", {}).get("annotations") or {}
    return [{"op": "remove", "path": pointer("metadata", "annotations", k)}
            for k, value in keys.items() if k in ann and (value is None or ann[k] == value)]


def _set(obj: Mapping[str, Any], field: str, value: Any) -> list[JSON]:
    spec = obj.get("spec") or {}
    if spec.get(field) == value:
        return []
    return [{"op": "add", "path": pointer("spec", field), "value": value}]


def service_ops(spec: CanarySpec, live: Mapping[str, Any], selector_label: str | None,
                selector_value: str | None) -> list[JSON]:
    """JSON patch giving the apex Service back ([] when nothing is left to do)."""
    target_selector = {selector_label: selector_value} if selector_label and selector_value else None
    owner = _owner_index(live, spec)
    if owner is not None:
        uid = live["metadata"]["ownerReferences"][owner].get("uid")
        ops: list[JSON] = [
            {"op": "test", "path": pointer("metadata", "ownerReferences", str(owner), "uid"), "value": uid},
            {"op": "remove", "path": pointer("metadata", "ownerReferences", str(owner))},
        ]
        return ops + (_set(live, "selector", target_selector) if target_selector else [])
    saved = saved_spec(live)
    ops = []
    if saved is not None and isinstance(saved.get("selector"), dict):
        ops += _set(live, "selector", saved["selector"])
    elif target_selector is not None:
        ops += _set(live, "selector", target_selector)
    if saved is not None and isinstance(saved.get("ports"), list) and saved["ports"]:
        ops += _set(live, "ports", saved["ports"])
    return ops + _drop_annotations(live, {ORIGINAL_CONFIGURATION: None})


def _to_apex(route: Mapping[str, Any], apex: str) -> JSON:
    """A route sending everything to the apex host (keeping a destination port when one is set)."""
    dests = route.get("route") or []
    port = next(((d.get("destination") or {}).get("port") for d in dests
                 if (d.get("destination") or {}).get("port")), None)
    destination: JSON = {"host": apex, **({"port": port} if port else {})}
    out = {k: v for k, v in route.items() if k not in ("route", "mirror", "mirrorPercentage")}
    out["route"] = [{"destination": destination, "weight": 100}]
    return out


def virtual_service_ops(spec: CanarySpec, live: Mapping[str, Any]) -> list[JSON] | None:
    """JSON patch giving the VirtualService back; None when it was taken over but no original spec was
    recorded (nothing can be restored)."""
    if _owner_index(live, spec) is not None:
        apex = spec.service.name
        vs_spec = live.get("spec") or {}
        ops: list[JSON] = []
        for key in ("http", "tcp"):
            routes = vs_spec.get(key)
            if isinstance(routes, list):
                ops += _set(live, key, [_to_apex(r, apex) for r in routes])
        return ops
    saved = saved_spec(live)
    if saved is None:
        return None
    ops = [] if (live.get("spec") or {}) == saved else [{"op": "add", "path": "/spec", "value": saved}]
    dropped: dict[str, str | None] = {ORIGINAL_CONFIGURATION: None, **TOOLKIT_DISABLED}
    return ops + _drop_annotations(live, dropped)
