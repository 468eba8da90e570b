"""``spec.service`` of a Canary -> :class:`ServiceSpec`: the ports, hosts, gateways and the routing
options copied into the generated Services and VirtualService, with Flagger's defaults.

Apart from ``parse`` so the top-level reader stays a short list of sections.
"""

from __future__ import annotations

from typing import Any

from canaryd.model.fields import (
    FieldError,
    read_bool,
    read_int,
    read_obj,
    read_obj_list,
    read_opt_obj,
    read_opt_str,
    read_str_list,
)
from canaryd.model.spec import ServiceSpec


def read_service(raw: Any, target_name: str) -> ServiceSpec:
    if raw is None:
        raise FieldError(
            "spec.service is missing: set at least spec.service.port (the port the app serves on)")
    svc = read_obj(raw, "spec.service")
    if svc.get("port") is None:
        raise FieldError("spec.service.port is missing: set the port the app serves on (e.g. 9898)")
    port = read_int(svc.get("port"), "spec.service.port", default=0)
    if not 1 <= port <= 65535:
        raise FieldError(f"spec.service.port {port} is out of range; use a port between 1 and 65535")
    target_port: int | str | None = svc.get("targetPort")
    if target_port in (0, "", None):
        target_port = None
    elif not isinstance(target_port, (int, str)) or isinstance(target_port, bool):
        raise FieldError("spec.service.targetPort must be a port number or a port name")
    gateways = tuple(read_str_list(svc.get("gateways"), "spec.service.gateways")) or ("mesh",)
    hosts = tuple(read_str_list(svc.get("hosts"), "spec.service.hosts"))
    delegation = read_bool(svc.get("delegation"), "spec.service.delegation")
    if delegation and (svc.get("hosts") or svc.get("gateways")):
        raise FieldError(
            "spec.service.delegation is true but hosts or gateways are set: a delegate VirtualService cannot "
            "have hosts and gateways; remove them or set delegation: false"
        )
    unmanaged = read_obj(svc.get("unmanagedMetadata"), "spec.service.unmanagedMetadata")
    return ServiceSpec(
        name=str(svc.get("name") or target_name),
        port=port,
        port_name=str(svc.get("portName") or "http"),
        target_port=target_port,
        app_protocol=read_opt_str(svc.get("appProtocol")),
        port_discovery=read_bool(svc.get("portDiscovery"), "spec.service.portDiscovery"),
        gateways=gateways,
        hosts=hosts,
        delegation=delegation,
        timeout=read_opt_str(svc.get("timeout")),
        match=tuple(read_obj_list(svc.get("match"), "spec.service.match")),
        rewrite=read_opt_obj(svc.get("rewrite"), "spec.service.rewrite"),
        retries=read_opt_obj(svc.get("retries"), "spec.service.retries"),
        headers=read_opt_obj(svc.get("headers"), "spec.service.headers"),
        cors_policy=read_opt_obj(svc.get("corsPolicy"), "spec.service.corsPolicy"),
        traffic_policy=read_opt_obj(svc.get("trafficPolicy"), "spec.service.trafficPolicy"),
        headless=read_bool(svc.get("headless"), "spec.service.headless"),
        apex=read_opt_obj(svc.get("apex"), "spec.service.apex"),
        primary=read_opt_obj(svc.get("primary"), "spec.service.primary"),
        canary=read_opt_obj(svc.get("canary"), "spec.service.canary"),
        traffic_distribution=read_opt_str(svc.get("trafficDistribution")),
        unmanaged_labels=tuple(read_str_list(unmanaged.get("labels"),
                                             "spec.service.unmanagedMetadata.labels")),
        unmanaged_annotations=tuple(read_str_list(unmanaged.get("annotations"),
                                                  "spec.service.unmanagedMetadata.annotations")),
    )
