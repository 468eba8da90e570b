"""Builds the engine's :class:`Snapshot` of one canary from the watch cache (no API calls)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from canaryd.actuators.traffic import router_for
from canaryd.engine.requests import REQUEST_ANNOTATION
from canaryd.engine.revision import pod_template_hash, templates_match, tracked_checksums
from canaryd.engine.types import DeploymentView, Snapshot
from canaryd.kube.resources import CONFIGMAP, DEPLOYMENT, HPA, METRIC_TEMPLATE, SECRET
from canaryd.model.objects import Deployment, DeploymentSpec, DeploymentStatus, ObjectMeta
from canaryd.model.podconfigs import pod_config_refs
from canaryd.model.spec import CanarySpec
from canaryd.model.template_refs import template_problem
from canaryd.runtime.context import Context
from canaryd.runtime.spec_cache import object_version


class Derived:
    """What one task derives from cached Deployments and reuses while they keep their spec: a Deployment's
    ``metadata.generation`` moves with every spec change and only then, while its status changes many times
    per rollout (each a pass of the task). Keyed by (uid, generation), so a re-created Deployment is never
    mistaken for the old one; an object without a generation is never reused."""

    def __init__(self) -> None:
        self._hashes: dict[str, tuple[int, str]] = {}  # uid -> (generation, pod_template_hash)
        self._match: tuple[Any, bool] | None = None

    def template_hash(self, obj: Mapping[str, Any]) -> str:
        version = object_version(obj)
        if version is not None:
            uid, generation = version
            known = self._hashes.get(uid)
            if known is not None and known[0] == generation:
                return known[1]
        value = pod_template_hash((obj.get("spec") or {}).get("template") or {})
        if version is not None:
            if len(self._hashes) >= 4:  # the target and the primary; older uids were re-created ones
                self._hashes.clear()
            self._hashes[uid] = (generation, value)
        return value

    def templates_match(self, target: Mapping[str, Any], primary: Mapping[str, Any], selector_label: str, *,
                        target_name: str, tracked: list[str]) -> bool:
        key = (object_version(target), object_version(primary), selector_label, target_name, tuple(tracked))
        if self._match is not None and None not in key[:2] and self._match[0] == key:
            return self._match[1]
        value = templates_match((target.get("spec") or {}).get("template") or {},
                                (primary.get("spec") or {}).get("template") or {}, selector_label,
                                target_name=target_name, tracked=tracked)
        self._match = (key, value)
        return value


def deployment_view(obj: Deployment, selector_labels: tuple[str, ...],
                    derived: Derived | None = None) -> DeploymentView:
    """The facts decisions need of a cached Deployment (the one view: the engine has no other)."""
    meta: ObjectMeta = obj.get("metadata") or {}
    spec: DeploymentSpec = obj.get("spec") or {}
    status: DeploymentStatus = obj.get("status") or {}
    match = (spec.get("selector") or {}).get("matchLabels") or {}
    label = next((lbl for lbl in selector_labels if lbl in match), None)
    replicas = spec.get("replicas")
    return DeploymentView(
        name=str(meta.get("name", "")),
        generation=int(meta.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        spec_replicas=1 if replicas is None else int(replicas),
        status_replicas=int(status.get("replicas") or 0),
        updated_replicas=int(status.get("updatedReplicas") or 0),
        available_replicas=int(status.get("availableReplicas") or 0),
        ready_replicas=int(status.get("readyReplicas") or 0),
        template_hash=(derived.template_hash(cast(Mapping[str, Any], obj)) if derived is not None
                       else pod_template_hash(spec.get("template") or {})),
        conditions=tuple(status.get("conditions") or ()),
        selector_label=label,
        selector_value=str(match[label]) if label else None,
        image=_first_image(spec),
    )


def _first_image(spec: DeploymentSpec) -> str:
    containers = (((spec.get("template") or {}).get("spec") or {}).get("containers")) or []
    first = containers[0] if containers and isinstance(containers[0], dict) else {}
    return str(first.get("image") or "")


def build_snapshot(ctx: Context, spec: CanarySpec, derived: Derived | None = None) -> Snapshot:
    """``derived``: the task's own (reused between its passes); without it everything is computed."""
    derived = derived or Derived()
    store = ctx.store
    labels = ctx.settings.selector_labels
    ns = spec.namespace
    target_obj = store.get(DEPLOYMENT.kind, ns, spec.target.name)
    primary_obj = store.get(DEPLOYMENT.kind, ns, spec.primary_name)
    target = deployment_view(cast(Deployment, target_obj), labels, derived) if target_obj else None
    primary = deployment_view(cast(Deployment, primary_obj), labels, derived) if primary_obj else None

    checksums: tuple[tuple[str, str], ...] = ()
    config_error: str | None = None
    if target_obj is not None and ctx.settings.config_tracking:
        pod_spec = ((target_obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        refs = pod_config_refs(pod_spec)
        objects = {
            ref.key: store.get(CONFIGMAP.kind if ref.kind == "configmap" else SECRET.kind, ns, ref.name)
            for ref in refs
        }
        checksums, config_error = tracked_checksums(refs, objects)

    hpa = store.get(HPA.kind, ns, spec.autoscaler.name) if spec.autoscaler else None
    hpa_min = int((hpa.get("spec") or {}).get("minReplicas") or 1) if hpa else None

    observed = router_for(spec).current_routes(store, spec)  # the routing seam (actuators/traffic.py)

    matches: bool | None = None
    if target_obj is not None and primary_obj is not None and target and target.selector_label:
        matches = derived.templates_match(
            target_obj,
            primary_obj,
            target.selector_label,
            target_name=spec.target.name,
            tracked=[key for key, _ in checksums],
        )

    duplicate: str | None = None
    others = sorted(
        (c for c in ctx.index.for_target(ns, spec.target.name) if c != spec.name),
    )
    if others:
        mine = _created(store.get("Canary", ns, spec.name))
        for other in others:
            theirs = _created(store.get("Canary", ns, other))
            if (theirs, other) < (mine, spec.name):
                duplicate = other
                break

    return Snapshot(
        target=target,
        primary=primary,
        config_checksums=checksums,
        config_error=config_error,
        hpa_min_replicas=hpa_min,
        hpa_exists=hpa is not None,
        routes=(observed[0], observed[1]) if observed else None,
        mirrored=observed[2] if observed else None,
        primary_template_matches_target=matches,
        duplicate_of=duplicate,
        selector_labels=labels,
        request=_request(store.get("Canary", ns, spec.name)),
        template_error=template_problem(spec, lambda tns, tname: store.get(METRIC_TEMPLATE.kind, tns, tname),
                                        lambda sns, sname: store.get(SECRET.kind, sns, sname)),
    )


def _request(obj: dict[str, Any] | None) -> str | None:
    """The raw request annotation (engine/requests.py parses it: a bad one is answered, not dropped)."""
    value = (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(REQUEST_ANNOTATION)
    return value if isinstance(value, str) else None


def _created(obj: dict[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("creationTimestamp") or "")
