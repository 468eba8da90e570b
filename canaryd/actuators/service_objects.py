"""Desired bodies of the three ClusterIP Services of a Canary (flagger-reference.md §4.2), as pure
functions, and the port comparison the writer in ``routing`` uses to tell a Service needs a write.

Everything here maps (spec, cached target, settings) to plain dicts with no I/O, so the exact shapes
Flagger produces are pinned down by table tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from canaryd.actuators.generated import (
    JSON,
    GenerationSettings,
    object_meta,
    selector_label,
    with_toolkit_disabled,
)
from canaryd.model.primary import primary_name
from canaryd.model.spec import CanarySpec

_PROXY_CONTAINERS = frozenset({"istio-proxy", "envoy", "linkerd-proxy"})


def discovered_ports(spec: CanarySpec, target: Mapping[str, Any]) -> list[JSON]:
    """``portDiscovery``: every container port but the service's own, sorted by name (§1.2)."""
    svc = spec.service
    pod = target.get("spec", {}).get("template", {}).get("spec") or {}
    ports: dict[str, int] = {}
    for c in pod.get("containers") or []:
        if c.get("name") in _PROXY_CONTAINERS:
            continue
        for i, p in enumerate(c.get("ports") or []):
            number = p.get("containerPort")
            if svc.target_port is None:
                if number == svc.port:
                    continue
            elif isinstance(svc.target_port, int):
                if number == svc.target_port:
                    continue
            elif p.get("name") == svc.target_port:
                continue
            ports[p.get("name") or f"tcp-{c.get('name')}-{i}"] = number
    return [{"name": n, "protocol": "TCP", "port": v, "targetPort": v} for n, v in sorted(ports.items())]


def service_ports(spec: CanarySpec, target: Mapping[str, Any]) -> list[JSON]:
    svc = spec.service
    first: JSON = {
        "name": svc.port_name or "http",
        "protocol": "TCP",
        "port": svc.port,
        "targetPort": svc.target_port if svc.target_port not in (None, 0, "") else svc.port,
    }
    if svc.app_protocol:
        first["appProtocol"] = svc.app_protocol
    return [first, *(discovered_ports(spec, target) if svc.port_discovery else [])]


SERVICE_ROLES = ("apex", "primary", "canary")


def service_name(spec: CanarySpec, role: str) -> str:
    return spec.service.name if role == "apex" else f"{spec.service.name}-{role}"


def service(spec: CanarySpec, target: Mapping[str, Any], settings: GenerationSettings, role: str) -> JSON:
    """One of the three ClusterIP Services (§4.2); ``role`` is apex, primary or canary."""
    label, value = selector_label(target, settings.selector_labels)
    name = service_name(spec, role)
    custom: Mapping[str, Any] = getattr(spec.service, role) or {}
    labels = without_keys({**(custom.get("labels") or {}), label: name}, spec.service.unmanaged_labels)
    annotations = without_keys(with_toolkit_disabled(custom.get("annotations")),
                               spec.service.unmanaged_annotations)
    selector_value = value if role == "canary" else primary_name(value)
    body_spec: JSON = {
        "type": "ClusterIP",
        "selector": {label: selector_value},
        "ports": service_ports(spec, target),
    }
    if spec.service.headless:
        body_spec["clusterIP"] = "None"
    if spec.service.traffic_distribution:
        body_spec["trafficDistribution"] = spec.service.traffic_distribution
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(spec, name, labels, annotations),
        "spec": body_spec,
    }


def without_keys(meta: Mapping[str, Any], unmanaged: Sequence[str]) -> JSON:
    """``meta`` without the ``unmanagedMetadata`` keys: canaryd never adds, changes or removes those."""
    return {k: v for k, v in meta.items() if k not in unmanaged}


def metadata_patch(live: Mapping[str, Any] | None, desired: Mapping[str, Any],
                   unmanaged: Sequence[str]) -> JSON | None:
    """Merge-patch value for a Service's labels or annotations: ``desired`` exactly, except that the
    ``unmanaged`` keys of ``live`` are left as they are (neither set nor removed); None when equal."""
    have = without_keys(live or {}, unmanaged)
    want = without_keys(desired, unmanaged)
    if have == want:
        return None
    out: JSON = {k: v for k, v in want.items() if have.get(k) != v}
    out.update({k: None for k in have if k not in want})
    return out


def services(spec: CanarySpec, target: Mapping[str, Any], settings: GenerationSettings) -> dict[str, JSON]:
    return {role: service(spec, target, settings, role) for role in SERVICE_ROLES}


def port_key(port: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a port comparison looks at (the API server fills protocol; nodePort is the server's)."""
    return (port.get("name", ""), port.get("protocol", "TCP"), port.get("port"),
            port.get("targetPort", port.get("port")), port.get("appProtocol"))


def same_ports(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> bool:
    return sorted(map(port_key, a), key=repr) == sorted(map(port_key, b), key=repr)
