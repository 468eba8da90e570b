"""Desired bodies of the Istio routing objects of a Canary (flagger-reference.md §4.3, §4.4), as pure
functions: the two DestinationRules and the VirtualService with given weights, and :func:`routes_of`,
which reads the weights back from a VirtualService.

Everything here maps (spec, weights, cookies) to plain dicts with no I/O, so the exact shapes Flagger
produces are pinned down by table tests; the session affinity routes come from ``affinity``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, cast

from canaryd.actuators.affinity import http_routes
from canaryd.actuators.generated import JSON, GenerationError, object_meta, with_toolkit_disabled
from canaryd.actuators.service_objects import service_name
from canaryd.model.objects import Route
from canaryd.model.primary import primary_name
from canaryd.model.routes import Cookies
from canaryd.model.spec import CanarySpec


def destination_rules(spec: CanarySpec) -> tuple[JSON, JSON]:
    """DestinationRules ``<svc>-canary`` and ``<svc>-primary`` (§4.3): host + trafficPolicy, no subsets."""
    out = []
    for role in ("canary", "primary"):
        name = service_name(spec, role)
        dr_spec: JSON = {"host": name}
        if spec.service.traffic_policy:
            dr_spec["trafficPolicy"] = copy.deepcopy(spec.service.traffic_policy)
        out.append({
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "DestinationRule",
            "metadata": object_meta(spec, name),
            "spec": dr_spec,
        })
    return out[0], out[1]


def _destination(spec: CanarySpec, host: str, weight: int) -> JSON:
    svc = spec.service
    dest: JSON = {"host": host}
    if svc.port_discovery and ((svc.gateways and svc.gateways[0] != "mesh") or svc.delegation):
        dest["port"] = {"number": svc.port}
    return {"destination": dest, "weight": weight}


def merge_matches(canary: Sequence[JSON], service_match: Sequence[JSON]) -> list[JSON]:
    """A/B match = each service match with its headers/sourceLabels replaced by each analysis match's."""
    if not service_match:
        return [copy.deepcopy(m) for m in canary]
    merged = []
    for cm in canary:
        for sm in service_match:
            m = copy.deepcopy(sm)
            for key in ("headers", "sourceLabels"):
                if cm.get(key) is not None:
                    m[key] = copy.deepcopy(cm[key])
            merged.append(m)
    return merged


def _http_route(spec: CanarySpec, match: Sequence[JSON], route: list[JSON]) -> JSON:
    svc = spec.service
    out: JSON = {}
    if match:
        out["match"] = [copy.deepcopy(m) for m in match]
    rewrite = {k: v for k, v in (svc.rewrite or {}).items() if k in ("uri", "authority") and v}
    if rewrite:
        out["rewrite"] = rewrite
    if svc.timeout:
        out["timeout"] = svc.timeout
    if svc.retries is not None:
        out["retries"] = {"attempts": 0, **copy.deepcopy(svc.retries)}
    if svc.cors_policy is not None:
        out["corsPolicy"] = copy.deepcopy(svc.cors_policy)
    if svc.headers is not None:
        out["headers"] = copy.deepcopy(svc.headers)
    out["route"] = route
    return out


def vs_hosts_gateways(spec: CanarySpec) -> tuple[list[str], list[str] | None]:
    """Hosts (apex appended unless present or ``*``) and gateways (``mesh`` when empty); under
    delegation no hosts and no gateways, and setting either is an error."""
    svc = spec.service
    if svc.delegation:
        if svc.hosts or tuple(svc.gateways) not in ((), ("mesh",)):
            raise GenerationError(
                f"VirtualService {svc.name}.{spec.namespace} cannot have hosts and gateways when "
                "delegation enabled"
            )
        return [], None
    hosts = list(svc.hosts)
    if svc.name not in hosts and "*" not in hosts:
        hosts.append(svc.name)
    return hosts, list(svc.gateways) or ["mesh"]


def virtual_service_spec(spec: CanarySpec, primary_weight: int, canary_weight: int,
                         mirror: bool = False, cookies: Cookies | None = None) -> JSON:
    """``spec`` of the VirtualService routing by destination host with the given weights (§4.4);
    ``cookies`` (decided by ``engine/cookies.py``) add the session affinity routes."""
    svc = spec.service
    primary, canary = service_name(spec, "primary"), service_name(spec, "canary")
    hosts, gateways = vs_hosts_gateways(spec)
    out: JSON = {"hosts": hosts}
    if gateways is not None:
        out["gateways"] = gateways
    weighted = [_destination(spec, primary, primary_weight), _destination(spec, canary, canary_weight)]
    if (svc.app_protocol or "").lower() == "tcp":
        tcp: JSON = {}
        ports = [{"port": m["port"]} if m.get("port") else {} for m in svc.match]
        if ports:
            tcp["match"] = ports
        tcp["route"] = weighted
        out["tcp"] = [tcp]
        return out
    if spec.analysis.match:
        out["http"] = [
            _http_route(spec, merge_matches(spec.analysis.match, svc.match), weighted),
            _http_route(spec, svc.match, [_destination(spec, primary, primary_weight)]),
        ]
        return out
    route = _http_route(spec, svc.match, weighted)
    if mirror:
        route["mirror"] = {"host": canary}
        if spec.analysis.mirror_weight > 0:
            route["mirrorPercentage"] = {"value": float(spec.analysis.mirror_weight)}
    out["http"] = http_routes(spec, route, primary, canary, cookies)
    return out


def virtual_service(spec: CanarySpec, primary_weight: int, canary_weight: int, mirror: bool = False,
                    cookies: Cookies | None = None) -> JSON:
    """The whole VirtualService ``<svc>``: apex metadata plus the toolkit "disabled" annotations."""
    apex: Mapping[str, Any] = spec.service.apex or {}
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": object_meta(spec, spec.service.name, apex.get("labels") or {},
                          with_toolkit_disabled(apex.get("annotations"))),
        "spec": virtual_service_spec(spec, primary_weight, canary_weight, mirror, cookies),
    }


def routes_of(vs: Mapping[str, Any]) -> tuple[int, int, bool] | None:
    """(primary, canary, mirrored) read back from the last route naming ``<vs>-canary``; None when the
    VirtualService holds no such route (or both weights are 0, which Flagger reports as an error)."""
    name = vs.get("metadata", {}).get("name", "")
    primary, canary = primary_name(name), f"{name}-canary"
    spec = vs.get("spec") or {}
    chosen: Route | None = None
    routes = cast(list[Route], [*(spec.get("http") or []), *(spec.get("tcp") or [])])
    for route in routes:
        if any((d.get("destination") or {}).get("host") == canary for d in route.get("route") or []):
            chosen = route
    if chosen is None:
        return None
    weights = {"p": 0, "c": 0}
    for d in chosen.get("route") or []:
        host = (d.get("destination") or {}).get("host")
        if host == primary:
            weights["p"] = int(d.get("weight") or 0)
        elif host == canary:
            weights["c"] = int(d.get("weight") or 0)
    if weights["p"] == 0 and weights["c"] == 0:
        return None
    mirrored = bool((chosen.get("mirror") or {}).get("host"))
    return weights["p"], weights["c"], mirrored
