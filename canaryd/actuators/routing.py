"""Idempotent writers of the routing objects: the three Services, the DestinationRules and the
VirtualService (flagger-reference.md §4.2–§4.4).

Unlike Flagger, reconciling the VirtualService keeps the weights the caller passes (taken from the
Canary's status), so a spec edit mid-run never snaps traffic back to 100/0. Objects that existed before
the Canary (apex Service, VirtualService) are taken over without an ownerReference, their original spec
saved in ``flagger.kubernetes.io/original-configuration`` for a later revert."""

from __future__ import annotations

from typing import Any

from canaryd.actuators import istio_objects, revert, service_objects
from canaryd.actuators.generated import (
    KUBECTL_LAST_APPLIED,
    ORIGINAL_CONFIGURATION,
    GenerationSettings,
    owned_by,
)
from canaryd.actuators.workloads import ActuatorError, prepare
from canaryd.actuators.writes import (
    JSON,
    Log,
    create,
    map_merge_patch,
    original_configuration,
    patch,
    pointer,
)
from canaryd.cache.store import Store
from canaryd.kube.client import KubeClient
from canaryd.kube.errors import ApiError
from canaryd.kube.resources import DESTINATION_RULE, SERVICE, VIRTUAL_SERVICE
from canaryd.model.routes import Cookies, ObservedRoutes, Routes
from canaryd.model.spec import CanarySpec

_KEPT_ANNOTATIONS = (KUBECTL_LAST_APPLIED, ORIGINAL_CONFIGURATION)


def _service_patch(spec: CanarySpec, desired: JSON, live: JSON) -> JSON | None:
    """Merge patch bringing ``live`` to ``desired``: ports and selector always; labels/annotations only
    on Services this Canary owns (a taken-over one keeps its metadata and gains the original spec)."""
    lspec, dspec = live.get("spec") or {}, desired["spec"]
    out_spec: JSON = {}
    if not service_objects.same_ports(dspec["ports"], lspec.get("ports") or []):
        node_ports = {p.get("port"): p["nodePort"] for p in lspec.get("ports") or [] if p.get("nodePort")}
        out_spec["ports"] = [
            {**p, "nodePort": node_ports[p["port"]]} if p["port"] in node_ports else p for p in dspec["ports"]
        ]
    selector = map_merge_patch(lspec.get("selector"), dspec["selector"])
    if selector is not None:
        out_spec["selector"] = selector
    owned = owned_by(live, spec)
    want_td, have_td = dspec.get("trafficDistribution"), lspec.get("trafficDistribution")
    if want_td != have_td and (want_td is not None or owned):  # a taken-over Service keeps its own
        out_spec["trafficDistribution"] = want_td
    meta: JSON = {}
    if owned:
        unmanaged = {"labels": spec.service.unmanaged_labels,
                     "annotations": spec.service.unmanaged_annotations}
        for key in ("labels", "annotations"):
            change = service_objects.metadata_patch(live["metadata"].get(key),
                                                    desired["metadata"].get(key) or {}, unmanaged[key])
            if change is not None:
                meta[key] = change
    elif out_spec:
        original = original_configuration(live)
        if original:
            meta["annotations"] = original
    if not out_spec and not meta:
        return None
    out: JSON = {}
    if out_spec:
        out["spec"] = out_spec
    if meta:
        out["metadata"] = meta
    return out


async def ensure_services(client: KubeClient, store: Store, spec: CanarySpec, settings: GenerationSettings,
                          log: Log, *, apex: bool) -> int:
    """``<svc>-canary`` and ``<svc>-primary`` always, the apex ``<svc>`` only when ``apex`` (Flagger makes
    it once the primary is ready, for a zero-downtime takeover). Returns the number of writes."""
    prep = prepare(store, spec, settings)
    roles = ("canary", "primary", "apex") if apex else ("canary", "primary")
    writes = 0
    for role in roles:
        desired = service_objects.service(spec, prep.target, settings, role)
        name = desired["metadata"]["name"]
        live: JSON | None = store.get(SERVICE.kind, spec.namespace, name)
        if live is None:
            live, created = await create(client, store, SERVICE, desired, log, spec.key)
            if created:
                writes += 1
                continue
        body = _service_patch(spec, desired, live)
        if body is None:
            continue
        try:
            await patch(client, store, SERVICE, spec.namespace, name, body)
        except ApiError as err:
            raise ActuatorError(f"service {name}.{spec.namespace} update error: {err}") from err
        log.info(f"Service {name}.{spec.namespace} updated", extra={"canary": spec.key})
        writes += 1
    return writes


async def ensure_destination_rules(client: KubeClient, store: Store, spec: CanarySpec, log: Log) -> int:
    """Both DestinationRules; an existing one is rewritten only when its spec differs."""
    writes = 0
    for desired in istio_objects.destination_rules(spec):
        name = desired["metadata"]["name"]
        live: JSON | None = store.get(DESTINATION_RULE.kind, spec.namespace, name)
        if live is None:
            live, created = await create(client, store, DESTINATION_RULE, desired, log, spec.key)
            if created:
                writes += 1
                continue
        if live.get("spec") == desired["spec"]:
            continue
        ops = [{"op": "add", "path": "/spec", "value": desired["spec"]}]
        await patch(client, store, DESTINATION_RULE, spec.namespace, name, ops, patch_type="json")
        log.info(f"DestinationRule {name}.{spec.namespace} updated", extra={"canary": spec.key})
        writes += 1
    return writes


def _vs_metadata(spec: CanarySpec, desired: JSON, live: JSON) -> tuple[dict[str, str], dict[str, str]]:
    """Labels and annotations the VirtualService should carry; revert records survive on a taken-over VS,
    which also keeps its own labels and annotations (canaryd's are added to them)."""
    labels = dict(desired["metadata"].get("labels") or {})
    annotations = dict(desired["metadata"].get("annotations") or {})
    live_meta = live.get("metadata", {})
    live_ann = live_meta.get("annotations") or {}
    annotations.update({k: live_ann[k] for k in _KEPT_ANNOTATIONS if k in live_ann})
    if not owned_by(live, spec):
        labels = {**(live_meta.get("labels") or {}), **labels}
        annotations = {**live_ann, **annotations}
    return labels, annotations


async def _write_vs(client: KubeClient, store: Store, spec: CanarySpec, desired: JSON, log: Log) -> bool:
    name = spec.service.name
    live: JSON | None = store.get(VIRTUAL_SERVICE.kind, spec.namespace, name)
    if live is None:
        live, created = await create(client, store, VIRTUAL_SERVICE, desired, log, spec.key)
        if created:
            return True
    labels, annotations = _vs_metadata(spec, desired, live)
    meta = live.get("metadata", {})
    if live.get("spec") == desired["spec"] and (meta.get("labels") or {}) == labels \
            and (meta.get("annotations") or {}) == annotations:
        return False
    if not owned_by(live, spec):
        annotations.update(original_configuration(live))
    ops: list[JSON] = [
        {"op": "add", "path": "/spec", "value": desired["spec"]},
        {"op": "add", "path": pointer("metadata", "labels"), "value": labels},
        {"op": "add", "path": pointer("metadata", "annotations"), "value": annotations},
    ]
    try:
        await patch(client, store, VIRTUAL_SERVICE, spec.namespace, name, ops, patch_type="json")
    except ApiError as err:
        raise ActuatorError(f"VirtualService {name}.{spec.namespace} update error: {err}") from err
    log.info(f"VirtualService {name}.{spec.namespace} updated", extra={"canary": spec.key})
    return True


async def ensure_routing(client: KubeClient, store: Store, spec: CanarySpec, primary_weight: int,
                         canary_weight: int, mirror: bool = False, *, log: Log,
                         cookies: Cookies | None = None) -> int:
    """DestinationRules and the VirtualService with the given weights. The VS body is built first, so
    an invalid routing spec (e.g. delegation with hosts) fails before anything is written."""
    desired = istio_objects.virtual_service(spec, primary_weight, canary_weight, mirror, cookies)
    writes = await ensure_destination_rules(client, store, spec, log)
    writes += await _write_vs(client, store, spec, desired, log)
    return writes


def _without_routes(vs_spec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in vs_spec.items() if k not in ("http", "tcp")}


async def set_routes(client: KubeClient, store: Store, spec: CanarySpec, primary_weight: int,
                     canary_weight: int, mirror: bool = False, *, log: Log,
                     cookies: Cookies | None = None) -> bool:
    """Move traffic: when the VirtualService otherwise matches, only its routes are patched; otherwise
    it is reconciled whole with the new weights. Nothing is sent when the weights are already in place.
    Returns whether it wrote. ``cookies``: the session affinity routes (decided by ``engine/cookies.py``)."""
    desired = istio_objects.virtual_service(spec, primary_weight, canary_weight, mirror, cookies)
    live = store.get(VIRTUAL_SERVICE.kind, spec.namespace, spec.service.name)
    if live is None or _without_routes(live.get("spec") or {}) != _without_routes(desired["spec"]):
        return await _write_vs(client, store, spec, desired, log)
    if live.get("spec") == desired["spec"]:
        return False
    key = "tcp" if "tcp" in desired["spec"] else "http"
    ops: list[JSON] = [{"op": "add", "path": f"/spec/{key}", "value": desired["spec"][key]}]
    other = "http" if key == "tcp" else "tcp"
    if other in (live.get("spec") or {}):
        ops.append({"op": "remove", "path": f"/spec/{other}"})
    try:
        await patch(client, store, VIRTUAL_SERVICE, spec.namespace, spec.service.name, ops, patch_type="json")
    except ApiError as err:
        msg = f"VirtualService {spec.service.name}.{spec.namespace} update error: {err}"
        raise ActuatorError(msg) from err
    log.debug(f"VirtualService {spec.service.name}.{spec.namespace} routes set to "
              f"{primary_weight}/{canary_weight}/{mirror}", extra={"canary": spec.key})
    return True


class IstioRouter:
    """The Istio traffic provider behind :class:`canaryd.actuators.traffic.Router`: two DestinationRules
    and the VirtualService ``<svc>`` (bodies from :mod:`canaryd.actuators.istio_objects`)."""

    source = VIRTUAL_SERVICE

    async def ensure_routes(self, client: KubeClient, store: Store, spec: CanarySpec, routes: Routes,
                            log: Log) -> int:
        return await ensure_routing(client, store, spec, routes.primary, routes.canary, routes.mirror,
                                    log=log, cookies=routes.cookies)

    async def set_routes(self, client: KubeClient, store: Store, spec: CanarySpec, routes: Routes,
                         log: Log) -> bool:
        return await set_routes(client, store, spec, routes.primary, routes.canary, routes.mirror, log=log,
                                cookies=routes.cookies)

    def current_routes(self, store: Store, spec: CanarySpec) -> ObservedRoutes | None:
        vs = store.get(VIRTUAL_SERVICE.kind, spec.namespace, spec.service.name)
        return istio_objects.routes_of(vs) if vs else None

    async def revert(self, client: KubeClient, store: Store, spec: CanarySpec, selector_label: str | None,
                     selector_value: str | None, log: Log) -> int:
        return await revert.revert_routing(client, store, spec, selector_label, selector_value, log)
