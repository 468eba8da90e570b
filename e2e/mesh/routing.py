"""Pure routing decisions of the simulator: host parsing, Service → workload, weighted choice, match."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]
SUFFIXES = (".svc.cluster.local", ".svc")


@dataclass(frozen=True)
class Host:
    """A request's Host header split into a name and an optional namespace."""

    name: str
    namespace: str | None
    raw: str


def parse_host(header: str, default_namespace: str | None) -> Host:
    """``podinfo-canary:9898`` → (podinfo-canary, default ns); ``podinfo.test.svc.cluster.local`` → (podinfo, test).
    A dotted name that is not ``<svc>.<ns>`` (e.g. ``app.example.com``) keeps its full name, namespace None."""
    host = header.strip().lower()
    if host.startswith("["):
        host = host.split("]")[0] + "]"
    elif ":" in host:
        host = host.rsplit(":", 1)[0]
    for suffix in SUFFIXES:
        if host.endswith(suffix):
            host = host[: -len(suffix)]
            break
    parts = host.split(".")
    if len(parts) == 1:
        return Host(parts[0], default_namespace, header)
    if len(parts) == 2:
        return Host(parts[0], parts[1], header)
    return Host(host, None, header)


def selector_matches(selector: Mapping[str, str] | None, labels: Mapping[str, str] | None) -> bool:
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def workload_for_service(service: JSON, deployments: Sequence[JSON]) -> JSON | None:
    """The Deployment whose pod template labels match the Service's selector (first by name)."""
    selector = (service.get("spec") or {}).get("selector") or {}
    found = [
        d
        for d in deployments
        if selector_matches(
            selector, (((d.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")
        )
    ]
    found.sort(key=lambda d: str(d["metadata"]["name"]))
    return found[0] if found else None


def _string_match(rule: Mapping[str, Any], value: str | None) -> bool:
    if value is None:
        return False
    if "exact" in rule:
        return value == rule["exact"]
    if "prefix" in rule:
        return value.startswith(str(rule["prefix"]))
    if "suffix" in rule:
        return value.endswith(str(rule["suffix"]))
    if "regex" in rule:
        return re.fullmatch(str(rule["regex"]), value) is not None
    return True


def request_matches(match: Sequence[JSON] | None, headers: Mapping[str, str], path: str) -> bool:
    """Istio semantics: a route without ``match`` matches everything; otherwise any one block must fit
    (headers and uri; other conditions are ignored by the simulator)."""
    if not match:
        return True
    for block in match:
        ok = True
        for name, rule in (block.get("headers") or {}).items():
            if not _string_match(rule or {}, headers.get(name.lower())):
                ok = False
                break
        uri = block.get("uri")
        if ok and uri is not None and not _string_match(uri, path):
            ok = False
        if ok:
            return True
    return False


def choose_route(vs: JSON, headers: Mapping[str, str], path: str) -> JSON | None:
    """The first http route of the VirtualService whose match fits the request."""
    for route in (vs.get("spec") or {}).get("http") or []:
        if request_matches(route.get("match"), headers, path):
            return dict(route)
    return None


def pick_destination(route: JSON, draw: float) -> str | None:
    """Weighted choice of a destination host; ``draw`` in [0, 1). Weights missing = equal shares."""
    dests = route.get("route") or []
    if not dests:
        return None
    weights = [int(d.get("weight", 0) or 0) for d in dests]
    if sum(weights) <= 0:
        if len(dests) == 1:
            return str(dests[0]["destination"]["host"])
        return None
    point = draw * sum(weights)
    acc = 0
    for d, w in zip(dests, weights, strict=True):
        acc += w
        if point < acc:
            return str(d["destination"]["host"])
    return str(dests[-1]["destination"]["host"])


def vs_hosts(vs: JSON) -> list[str]:
    return [str(h).lower() for h in (vs.get("spec") or {}).get("hosts") or []]


def workload_behaviour(deployment: JSON) -> tuple[str, float, float]:
    """(version, error percent, added latency ms) from the pod template's first container."""
    containers = (
        (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")
    ) or []
    if not containers:
        return "", 0.0, 0.0
    c = containers[0]
    image = str(c.get("image", ""))
    version = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else "latest"
    env = {str(e.get("name")): str(e.get("value", "")) for e in c.get("env") or [] if isinstance(e, dict)}

    def num(key: str) -> float:
        try:
            return float(env.get(key, "0") or 0)
        except ValueError:
            return 0.0

    return version, num("BED_ERROR_PERCENT"), num("BED_LATENCY_MS")
