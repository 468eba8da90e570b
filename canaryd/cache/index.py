"""Which Canaries depend on a cached object, so a change wakes exactly those canaries' tasks.

Lookups scan the Canaries of one namespace in the store (cheap: a few dicts each) rather than keeping
a second structure in step with the store; an object that was just deleted is matched by name, since
its ownerReferences are gone with it.

* target Deployment / HPA: (namespace, ``spec.targetRef.name`` / ``spec.autoscalerRef.name``);
* ConfigMap / Secret: referenced by the target's pod spec (volumes, projected sources, env, envFrom of
  containers and initContainers), or a ``-primary`` copy of one;
* generated objects (``<target>-primary``, Services ``<svc>``, ``<svc>-primary``, ``<svc>-canary``,
  VirtualService, DestinationRules, ``<hpa>-primary``): an ownerReference to the Canary's uid, or the name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from canaryd.cache.store import Store
from canaryd.model.podconfigs import pod_config_refs

CANARY = "Canary"


@dataclass(frozen=True)
class CanaryRefs:
    """The names a Canary's generated and watched objects are derived from."""

    target: str
    service: str
    autoscaler: str

    def workload_names(self) -> set[str]:
        names = {self.target, f"{self.target}-primary"}
        if self.autoscaler:
            names |= {self.autoscaler, f"{self.autoscaler}-primary"}
        return names

    def service_names(self) -> set[str]:
        return {self.service, f"{self.service}-primary", f"{self.service}-canary"}


def canary_refs(canary: dict[str, Any]) -> CanaryRefs:
    spec = canary.get("spec") or {}
    target = str((spec.get("targetRef") or {}).get("name") or "")
    service = str((spec.get("service") or {}).get("name") or target)
    autoscaler = str((spec.get("autoscalerRef") or {}).get("name") or "")
    return CanaryRefs(target, service, autoscaler)


def config_refs(pod_spec: dict[str, Any]) -> set[str]:
    """``"configmap/<name>"`` and ``"secret/<name>"`` for every ConfigMap/Secret a pod spec uses
    (optional references included: they matter when they appear)."""
    return {ref.key for ref in pod_config_refs(pod_spec)}


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _owner_uids(obj: dict[str, Any] | None) -> set[str]:
    if obj is None:
        return set()
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return {str(o.get("uid")) for o in refs if o.get("kind") == CANARY and o.get("uid")}


def canaries_for_target(store: Store, namespace: str, deployment: str) -> list[str]:
    """Canaries in ``namespace`` whose ``targetRef`` names ``deployment``."""
    return [_name(c) for c in store.items(CANARY, namespace) if canary_refs(c).target == deployment]


def canaries_for_config(store: Store, namespace: str, ref: str) -> list[str]:
    """Canaries whose target's pod spec uses ``ref`` (``"configmap/x"`` | ``"secret/x"``), or whose
    ``-primary`` copy ``ref`` is."""
    kind, _, name = ref.partition("/")
    base = f"{kind}/{name[: -len('-primary')]}" if name.endswith("-primary") else None
    out = []
    for canary in store.items(CANARY, namespace):
        target = store.get("Deployment", namespace, canary_refs(canary).target)
        if target is None:
            continue
        refs = config_refs(((target.get("spec") or {}).get("template") or {}).get("spec") or {})
        if ref in refs or (base is not None and base in refs):
            out.append(_name(canary))
    return out


def canaries_for_generated(store: Store, kind: str, namespace: str, name: str) -> list[str]:
    """Canaries owning the object (by ownerReference uid while it exists) or whose naming scheme
    produces ``name`` for ``kind``."""
    owners = _owner_uids(store.get(kind, namespace, name))
    out = []
    for canary in store.items(CANARY, namespace):
        uid = str((canary.get("metadata") or {}).get("uid") or "")
        refs = canary_refs(canary)
        if uid in owners:
            out.append(_name(canary))
        elif kind in ("Deployment", "HorizontalPodAutoscaler") and name in refs.workload_names():
            out.append(_name(canary))
        elif kind in ("Service", "DestinationRule", "VirtualService") and name in refs.service_names():
            out.append(_name(canary))
    return out


def dependents(store: Store, kind: str, namespace: str, name: str) -> list[str]:
    """Names of the Canaries in ``namespace`` that a change of ``kind`` ``namespace/name`` concerns
    (the Canary itself for a Canary), without duplicates, in store order."""
    if kind == CANARY:
        return [name]
    if kind in ("ConfigMap", "Secret"):
        found = canaries_for_config(store, namespace, f"{kind.lower()}/{name}")
        found += canaries_for_generated(store, kind, namespace, name)
    else:
        found = canaries_for_generated(store, kind, namespace, name)
    return list(dict.fromkeys(found))
