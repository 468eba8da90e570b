"""Desired bodies of the objects a Canary generates (flagger-behaviour.md §4), as pure functions.

Everything here maps (spec, cached objects, settings) to plain dicts with no I/O, so the exact shapes
Flagger produces are pinned down by table tests, and the writers in ``workloads``/``routing`` only
decide *whether* to write, never *what*.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from canaryd.actuators.affinity import Cookies, http_routes
from canaryd.model.spec import CanarySpec

JSON = dict[str, Any]

TOOLKIT_MARKER = "toolkit.fluxcd.io"
TOOLKIT_DISABLED = {
    "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
    "helm.toolkit.fluxcd.io/driftDetection": "disabled",
}
FLAGGER_ID = "flagger-id"
KUBECTL_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ORIGINAL_CONFIGURATION = "flagger.kubernetes.io/original-configuration"
# annotations that describe the source object itself and must not be copied to a generated one
_NOT_COPIED = frozenset({KUBECTL_LAST_APPLIED, "deployment.kubernetes.io/revision"})
_PROXY_CONTAINERS = frozenset({"istio-proxy", "envoy", "linkerd-proxy"})


class GenerationError(Exception):
    """The target cannot be turned into generated objects; ``str()`` is Flagger's message."""


class GenerationSettings(Protocol):
    """The part of :class:`canaryd.settings.Settings` generation depends on."""

    @property
    def selector_labels(self) -> tuple[str, ...]: ...

    @property
    def include_label_prefix(self) -> tuple[str, ...]: ...

    @property
    def config_tracking(self) -> bool: ...


# ---------------------------------------------------------------------------------------------------
# metadata helpers


def drop_toolkit(meta: Mapping[str, str] | None) -> dict[str, str]:
    """Flux's keys are dropped so Flux never manages a generated object as if it were the source."""
    return {k: v for k, v in (meta or {}).items() if TOOLKIT_MARKER not in k}


def copied_annotations(meta: Mapping[str, str] | None) -> dict[str, str]:
    """Annotations carried from a source object to its generated copy."""
    return {k: v for k, v in drop_toolkit(meta).items() if k not in _NOT_COPIED}


def include_by_prefix(meta: Mapping[str, str] | None, prefixes: Sequence[str]) -> dict[str, str]:
    """``-include-label-prefix``: ``*`` keeps all, empty keeps none; toolkit keys always go."""
    wanted = [p for p in prefixes if p]
    return {
        k: v
        for k, v in drop_toolkit(meta).items()
        if any(p == "*" or k.startswith(p) for p in wanted)
    }


def with_toolkit_disabled(meta: Mapping[str, str] | None) -> dict[str, str]:
    """Annotations of generated Services/VirtualService: Flux is told to keep its hands off."""
    return {**(meta or {}), **TOOLKIT_DISABLED}


def owner_reference(spec: CanarySpec) -> JSON:
    """The controller reference that lets the garbage collector remove generated objects."""
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "name": spec.name,
        "uid": spec.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(obj: Mapping[str, Any], spec: CanarySpec) -> bool:
    """Whether ``obj`` was generated for this Canary (Flagger: an owner of kind Canary with its name)."""
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return any(r.get("kind") == "Canary" and r.get("name") == spec.name for r in refs)


def _meta(spec: CanarySpec, name: str, labels: Mapping[str, str] | None = None,
          annotations: Mapping[str, str] | None = None, owned: bool = True) -> JSON:
    meta: JSON = {"name": name, "namespace": spec.namespace}
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    if owned:
        meta["ownerReferences"] = [owner_reference(spec)]
    return meta


# ---------------------------------------------------------------------------------------------------
# selector label and tracked configs


def selector_label(target: Mapping[str, Any], labels: Sequence[str]) -> tuple[str, str]:
    """First configured selector label present in ``spec.selector.matchLabels`` and its value."""
    match = (target.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
    for label in labels:
        if label in match:
            return label, str(match[label])
    meta = target.get("metadata", {})
    raise GenerationError(
        f"deployment {meta.get('name')}.{meta.get('namespace')} spec.selector.matchLabels must contain "
        f"one of [{' '.join(labels)}]"
    )


def _containers(pod: Mapping[str, Any]) -> list[JSON]:
    return [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]


# ---------------------------------------------------------------------------------------------------
# primary Deployment


def _primary_labels(labels: Mapping[str, str] | None, label: str, value: str) -> dict[str, str]:
    return {**(labels or {}), label: f"{value}-primary"}


def _rename_selector_values(selector: JSON | None, target_name: str) -> None:
    if selector:
        match = selector.get("matchLabels") or {}
        for key, val in match.items():
            if val == target_name:
                match[key] = f"{val}-primary"


def primary_pod_spec(target: Mapping[str, Any], tracked: Iterable[str]) -> JSON:
    """Target pod spec with tracked config refs renamed ``-primary`` and anti-affinity /
    topology-spread selectors that name the target renamed to the primary."""
    keys = frozenset(tracked)
    pod: JSON = copy.deepcopy(target.get("spec", {}).get("template", {}).get("spec") or {})

    def rename(kind: str, ref: JSON | None, field: str = "name") -> None:
        if ref and f"{kind}/{ref.get(field)}" in keys:
            ref[field] = f"{ref[field]}-primary"

    for vol in pod.get("volumes") or []:
        rename("configmap", vol.get("configMap"))
        rename("secret", vol.get("secret"), "secretName")
        for src in (vol.get("projected") or {}).get("sources") or []:
            rename("configmap", src.get("configMap"))
            rename("secret", src.get("secret"))
    for c in _containers(pod):
        for env in c.get("env") or []:
            vf = env.get("valueFrom") or {}
            rename("configmap", vf.get("configMapKeyRef"))
            rename("secret", vf.get("secretKeyRef"))
        for ef in c.get("envFrom") or []:
            rename("configmap", ef.get("configMapRef"))
            rename("secret", ef.get("secretRef"))

    name = str(target.get("metadata", {}).get("name", ""))
    anti = (pod.get("affinity") or {}).get("podAntiAffinity") or {}
    for term in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        _rename_selector_values((term.get("podAffinityTerm") or {}).get("labelSelector"), name)
    for term in anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []:
        _rename_selector_values(term.get("labelSelector"), name)
    for tsc in pod.get("topologySpreadConstraints") or []:
        _rename_selector_values(tsc.get("labelSelector"), name)
    return pod


def primary_template(target: Mapping[str, Any], label: str, value: str, tracked: Iterable[str],
                     flagger_id: str) -> JSON:
    """The primary's pod template: what both creation and promotion write (§3.5)."""
    tmeta = target.get("spec", {}).get("template", {}).get("metadata") or {}
    annotations = {**drop_toolkit(tmeta.get("annotations")), FLAGGER_ID: flagger_id}
    return {
        "metadata": {
            "labels": _primary_labels(tmeta.get("labels"), label, value),
            "annotations": annotations,
        },
        "spec": primary_pod_spec(target, tracked),
    }


_COPIED_SPEC_FIELDS = ("progressDeadlineSeconds", "minReadySeconds", "revisionHistoryLimit", "strategy")


def primary_deployment(spec: CanarySpec, target: Mapping[str, Any], settings: GenerationSettings, *,
                       tracked: Iterable[str], flagger_id: str) -> JSON:
    """``<target>-primary`` as created at initialization (§4.1)."""
    label, value = selector_label(target, settings.selector_labels)
    tmeta = target.get("metadata", {})
    tspec = target.get("spec", {})
    replicas = tspec.get("replicas")
    body_spec: JSON = {k: copy.deepcopy(tspec[k]) for k in _COPIED_SPEC_FIELDS if k in tspec}
    body_spec.update({
        "replicas": replicas if isinstance(replicas, int) and replicas > 0 else 1,
        "selector": {"matchLabels": {label: f"{value}-primary"}},
        "template": primary_template(target, label, value, tracked, flagger_id),
    })
    kept = include_by_prefix(tmeta.get("labels"), settings.include_label_prefix)
    labels = _primary_labels(kept, label, value)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(spec, spec.primary_name, labels, copied_annotations(tmeta.get("annotations"))),
        "spec": body_spec,
    }


def promotion(spec: CanarySpec, target: Mapping[str, Any], settings: GenerationSettings, *,
              tracked: Iterable[str], flagger_id: str) -> JSON:
    """What promotion copies onto the primary (§3.5): ``{"spec": {...}, "labels": {...},
    "annotations": {...}}``; labels/annotations are merged into the primary's, never removed."""
    label, value = selector_label(target, settings.selector_labels)
    tmeta = target.get("metadata", {})
    tspec = target.get("spec", {})
    out_spec: JSON = {k: copy.deepcopy(tspec[k]) for k in _COPIED_SPEC_FIELDS if k in tspec}
    out_spec.setdefault("minReadySeconds", 0)
    if spec.autoscaler is None and isinstance(tspec.get("replicas"), int):
        out_spec["replicas"] = tspec["replicas"]
    out_spec["template"] = primary_template(target, label, value, tracked, flagger_id)
    return {
        "spec": out_spec,
        "labels": _primary_labels(include_by_prefix(tmeta.get("labels"), settings.include_label_prefix),
                                  label, value),
        "annotations": include_by_prefix(tmeta.get("annotations"), settings.include_label_prefix),
    }


def canary_replicas(spec: CanarySpec, target: Mapping[str, Any], hpa: Mapping[str, Any] | None,
                    primary: Mapping[str, Any] | None = None) -> int:
    """Replicas the target is scaled up to when a run starts (Flagger's ``ScaleFromZero``, §4.1)."""
    replicas = target.get("spec", {}).get("replicas")
    if isinstance(replicas, int) and replicas > 0:
        return replicas
    if spec.autoscaler is not None:
        if hpa is not None:
            low = hpa.get("spec", {}).get("minReplicas")
            if isinstance(low, int) and low > 1:
                return low
        return 1
    if primary is not None:
        prim = primary.get("spec", {}).get("replicas")
        if isinstance(prim, int) and prim > 0:
            return prim
    return 1


# ---------------------------------------------------------------------------------------------------
# config copies and primary HPA


def config_copy(spec: CanarySpec, source: Mapping[str, Any], settings: GenerationSettings) -> JSON:
    """``<name>-primary`` copy of a full ConfigMap or Secret (read on demand: the cache holds no data)."""
    meta = source.get("metadata", {})
    kind = source.get("kind") or ("Secret" if "type" in source else "ConfigMap")
    owners = [owner_reference(spec)] + [
        {**r, "controller": False}
        for r in meta.get("ownerReferences") or []
        if r.get("kind") != "Canary"
    ]
    out_meta: JSON = {"name": f"{meta.get('name')}-primary", "namespace": spec.namespace}
    labels = include_by_prefix(meta.get("labels"), settings.include_label_prefix)
    if labels:
        out_meta["labels"] = labels
    annotations = copied_annotations(meta.get("annotations"))
    if annotations:
        out_meta["annotations"] = annotations
    out_meta["ownerReferences"] = owners
    body: JSON = {"apiVersion": "v1", "kind": kind, "metadata": out_meta}
    if kind == "Secret":
        body["type"] = source.get("type", "Opaque")
    for key in ("data", "binaryData"):
        if source.get(key):
            body[key] = copy.deepcopy(source[key])
    return body


def primary_hpa(spec: CanarySpec, target_hpa: Mapping[str, Any], settings: GenerationSettings,
                *, promoting: bool = False) -> JSON:
    """``<autoscaler>-primary`` (autoscaling/v2) scaling the primary. Metadata: the target HPA's minus
    toolkit keys on creation, filtered by ``-include-label-prefix`` when synced at promotion."""
    src = target_hpa.get("spec", {})
    ref = src.get("scaleTargetRef") or {}
    hpa_spec: JSON = {
        "scaleTargetRef": {
            "apiVersion": ref.get("apiVersion", "apps/v1"),
            "kind": ref.get("kind", "Deployment"),
            "name": spec.primary_name,
        },
        "maxReplicas": src.get("maxReplicas"),
    }
    for key in ("minReplicas", "metrics", "behavior"):
        if src.get(key) is not None:
            hpa_spec[key] = copy.deepcopy(src[key])
    meta = target_hpa.get("metadata", {})
    name = f"{spec.autoscaler.name if spec.autoscaler else meta.get('name')}-primary"
    if promoting:
        labels = include_by_prefix(meta.get("labels"), settings.include_label_prefix)
        annotations = include_by_prefix(meta.get("annotations"), settings.include_label_prefix)
    else:
        labels, annotations = drop_toolkit(meta.get("labels")), copied_annotations(meta.get("annotations"))
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(spec, name, labels, annotations),
        "spec": hpa_spec,
    }


# ---------------------------------------------------------------------------------------------------
# Services


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
    labels = {**(custom.get("labels") or {}), label: name}
    annotations = with_toolkit_disabled(custom.get("annotations"))
    selector_value = value if role == "canary" else f"{value}-primary"
    body_spec: JSON = {
        "type": "ClusterIP",
        "selector": {label: selector_value},
        "ports": service_ports(spec, target),
    }
    if spec.service.headless:
        body_spec["clusterIP"] = "None"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(spec, name, labels, annotations),
        "spec": body_spec,
    }


def services(spec: CanarySpec, target: Mapping[str, Any], settings: GenerationSettings) -> dict[str, JSON]:
    return {role: service(spec, target, settings, role) for role in SERVICE_ROLES}


def port_key(port: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a port comparison looks at (the API server fills protocol; nodePort is the server's)."""
    return (port.get("name", ""), port.get("protocol", "TCP"), port.get("port"),
            port.get("targetPort", port.get("port")), port.get("appProtocol"))


def same_ports(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> bool:
    return sorted(map(port_key, a), key=repr) == sorted(map(port_key, b), key=repr)


# ---------------------------------------------------------------------------------------------------
# Istio


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
            "metadata": _meta(spec, name),
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
    ``cookies`` (``affinity.cookies_for``) add the session affinity routes."""
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
        "metadata": _meta(spec, spec.service.name, apex.get("labels") or {},
                          with_toolkit_disabled(apex.get("annotations"))),
        "spec": virtual_service_spec(spec, primary_weight, canary_weight, mirror, cookies),
    }


def routes_of(vs: Mapping[str, Any]) -> tuple[int, int, bool] | None:
    """(primary, canary, mirrored) read back from the last route naming ``<vs>-canary``; None when the
    VirtualService holds no such route (or both weights are 0, which Flagger reports as an error)."""
    name = vs.get("metadata", {}).get("name", "")
    primary, canary = f"{name}-primary", f"{name}-canary"
    spec = vs.get("spec") or {}
    chosen: Mapping[str, Any] | None = None
    for route in [*(spec.get("http") or []), *(spec.get("tcp") or [])]:
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
