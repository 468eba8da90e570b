"""The simulator's read-only view of the cluster: Services, Deployments and VirtualServices, indexed for
the per-request lookups (host → VirtualService, Service → workloads). Rebuilt lazily after a change, so a
request costs dictionary look-ups, not scans."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from e2e.mesh import routing
from e2e.mesh.routing import JSON

Key = tuple[str, str]  # (namespace, name)


@dataclass
class Index:
    """One consistent snapshot of the lookups (built by ``build_index``)."""

    services: dict[Key, JSON] = field(default_factory=dict)
    deployments: dict[str, list[JSON]] = field(default_factory=dict)  # namespace -> Deployments
    vs_by_host: dict[str, JSON] = field(default_factory=dict)  # host key -> VirtualService
    workloads: dict[Key, list[JSON]] = field(default_factory=dict)  # Service -> matching Deployments
    apex: list[Key] = field(default_factory=list)  # Services named by a VirtualService's hosts
    virtual_services: dict[Key, JSON] = field(default_factory=dict)  # for ``delegate`` look-ups


def build_index(
    services: Mapping[Key, JSON], deployments: Mapping[Key, JSON], virtual_services: Mapping[Key, JSON]
) -> Index:
    """Several VirtualServices claiming one host: the oldest name wins (by namespace/name order), which is
    deterministic if not Istio's exact merge rule."""
    index = Index(services=dict(services), virtual_services=dict(virtual_services))
    for (ns, _), d in sorted(deployments.items()):
        index.deployments.setdefault(ns, []).append(d)
    for (ns, name), svc in index.services.items():
        index.workloads[(ns, name)] = routing.workloads_for_service(svc, index.deployments.get(ns, []))
    apex: set[Key] = set()
    for (vs_ns, _), vs in sorted(virtual_services.items()):
        for host in routing.vs_hosts(vs):
            key = routing.vs_host_key(host, vs_ns)
            index.vs_by_host.setdefault(key, vs)
            parsed = routing.parse_host(key, None)
            if parsed.namespace is not None and (parsed.namespace, parsed.name) in index.services:
                apex.add((parsed.namespace, parsed.name))
    index.apex = sorted(apex)
    return index


def virtual_service_for(index: Index, host_header: str, namespace: str | None) -> JSON | None:
    for key in routing.request_keys(host_header, namespace):
        vs = index.vs_by_host.get(key)
        if vs is not None:
            return vs
    return None
