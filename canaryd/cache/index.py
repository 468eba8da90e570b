"""Which Canaries depend on a cached object, so a change wakes exactly those canaries' tasks.

``CanaryIndex`` keeps, per namespace, the names each Canary's objects are derived from and its uid, in
step with the store (it subscribes to it): every watch event of every kind asks it, so a lookup must not
scan the namespace's Canaries (with 1,000 Canaries in one namespace, the scans took 70 % of the process's
CPU). ConfigMap/Secret lookups still read each Canary's target from the store (those changes are rare). An
object that was just deleted is matched by name, since its ownerReferences are gone with it.

* target Deployment / HPA: (namespace, ``spec.targetRef.name`` / ``spec.autoscalerRef.name``);
* ConfigMap / Secret: referenced by the target's pod spec (volumes, projected sources, env, envFrom of
  containers and initContainers), or a ``-primary`` copy of one;
* Secret, also: named by the ``secretRef`` of a MetricTemplate or AlertProvider the Canary uses (in
  any namespace);
* generated objects (``<target>-primary``, Services ``<svc>``, ``<svc>-primary``, ``<svc>-canary``,
  VirtualService, DestinationRules, ``<hpa>-primary``): an ownerReference to the Canary's uid, or the name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from canaryd.cache.store import Store, key_of
from canaryd.model.podconfigs import pod_config_refs
from canaryd.model.primary import primary_name, source_name

CANARY = "Canary"


@dataclass(frozen=True)
class CanaryRefs:
    """The names a Canary's generated and watched objects are derived from."""

    target: str
    service: str
    autoscaler: str

    def workload_names(self) -> set[str]:
        names = {self.target, primary_name(self.target)}
        if self.autoscaler:
            names |= {self.autoscaler, primary_name(self.autoscaler)}
        return names

    def service_names(self) -> set[str]:
        return {self.service, primary_name(self.service), f"{self.service}-canary"}


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


class CanaryIndex:
    """Canary names by the names they derive their objects from, and by uid, per namespace; updated by
    the store's change notifications (subscribe it before anything that looks things up on a change)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._entries: dict[tuple[str, str], tuple[str, CanaryRefs]] = {}  # (ns, canary) -> (uid, refs)
        self._targets: dict[tuple[str, str], set[str]] = {}  # (ns, targetRef name) -> canaries
        self._workloads: dict[tuple[str, str], set[str]] = {}  # (ns, Deployment/HPA name) -> canaries
        self._services: dict[tuple[str, str], set[str]] = {}  # (ns, Service/VS/DR name) -> canaries
        self._uids: dict[tuple[str, str], str] = {}  # (ns, uid) -> canary
        for canary in store.items(CANARY):
            self._add(*key_of(canary), canary)
        self.unsubscribe = store.subscribe(self._on_change)

    def _on_change(self, kind: str, namespace: str, name: str) -> None:
        if kind != CANARY:
            return
        self._remove(namespace, name)
        canary = self.store.get(CANARY, namespace, name)
        if canary is not None:
            self._add(namespace, name, canary)

    def _add(self, ns: str, name: str, canary: dict[str, Any]) -> None:
        uid = str((canary.get("metadata") or {}).get("uid") or "")
        refs = canary_refs(canary)
        self._entries[(ns, name)] = (uid, refs)
        self._targets.setdefault((ns, refs.target), set()).add(name)
        for n in refs.workload_names():
            self._workloads.setdefault((ns, n), set()).add(name)
        for n in refs.service_names():
            self._services.setdefault((ns, n), set()).add(name)
        if uid:
            self._uids[(ns, uid)] = name

    def _remove(self, ns: str, name: str) -> None:
        entry = self._entries.pop((ns, name), None)
        if entry is None:
            return
        uid, refs = entry
        _discard(self._targets, (ns, refs.target), name)
        for n in refs.workload_names():
            _discard(self._workloads, (ns, n), name)
        for n in refs.service_names():
            _discard(self._services, (ns, n), name)
        if uid and self._uids.get((ns, uid)) == name:
            del self._uids[(ns, uid)]

    def for_target(self, namespace: str, deployment: str) -> list[str]:
        """Canaries in ``namespace`` whose ``targetRef`` names ``deployment``."""
        return sorted(self._targets.get((namespace, deployment), ()))

    def for_generated(self, kind: str, namespace: str, name: str) -> list[str]:
        """Canaries owning the object (by ownerReference uid while it exists) or whose naming scheme
        produces ``name`` for ``kind``."""
        found = {self._uids[(namespace, uid)] for uid in _owner_uids(self.store.get(kind, namespace, name))
                 if (namespace, uid) in self._uids}
        if kind in ("Deployment", "HorizontalPodAutoscaler"):
            found |= self._workloads.get((namespace, name), set())
        elif kind in ("Service", "DestinationRule", "VirtualService"):
            found |= self._services.get((namespace, name), set())
        return sorted(found)


def _discard(index: dict[tuple[str, str], set[str]], key: tuple[str, str], name: str) -> None:
    names = index.get(key)
    if names is not None:
        names.discard(name)
        if not names:
            del index[key]


def canaries_for_config(store: Store, namespace: str, ref: str) -> list[str]:
    """Canaries whose target's pod spec uses ``ref`` (``"configmap/x"`` | ``"secret/x"``), or whose
    ``-primary`` copy ``ref`` is."""
    kind, _, name = ref.partition("/")
    source = source_name(name)
    base = f"{kind}/{source}" if source is not None else None
    out = []
    for canary in store.items(CANARY, namespace):
        target = store.get("Deployment", namespace, canary_refs(canary).target)
        if target is None:
            continue
        refs = config_refs(((target.get("spec") or {}).get("template") or {}).get("spec") or {})
        if ref in refs or (base is not None and base in refs):
            out.append(_name(canary))
    return out


def canaries_for_template(store: Store, namespace: str, name: str) -> list[tuple[str, str]]:
    """(namespace, name) of the Canaries, in any namespace, whose metrics reference MetricTemplate
    ``namespace/name`` (a ref without namespace means the Canary's own). Template changes are rare, so
    this scans the Canaries instead of keeping an index."""
    return _canaries_referencing(store, "metrics", "templateRef", namespace, name)


def _canaries_referencing(store: Store, field: str, ref_key: str, namespace: str,
                          name: str) -> list[tuple[str, str]]:
    """(namespace, name) of the Canaries with an ``analysis.<field>[]`` entry whose ``<ref_key>`` names
    ``namespace/name`` (no namespace: the Canary's own)."""
    out = []
    for canary in store.items(CANARY):
        cns, cname = key_of(canary)
        for entry in _analysis_list(canary, field):
            ref = entry.get(ref_key) if isinstance(entry, dict) else None
            if isinstance(ref, dict) and ref.get("name") == name \
                    and (ref.get("namespace") or cns) == namespace:
                out.append((cns, cname))
                break
    return out


def _analysis_list(canary: dict[str, Any], field: str) -> list[Any]:
    spec = canary.get("spec") or {}
    analysis = spec.get("analysis") or spec.get("canaryAnalysis") or {}
    items = analysis.get(field) if isinstance(analysis, dict) else None
    return items if isinstance(items, list) else []


def canaries_for_alert_provider(store: Store, namespace: str, name: str) -> list[tuple[str, str]]:
    """(namespace, name) of the Canaries, in any namespace, whose alerts use AlertProvider
    ``namespace/name`` (a ref without namespace means the Canary's own)."""
    return _canaries_referencing(store, "alerts", "providerRef", namespace, name)


def _secret_ref(obj: dict[str, Any], *path: str) -> str:
    node: Any = obj
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return str(node.get("name") or "") if isinstance(node, dict) else ""


def canaries_for_secret(store: Store, namespace: str, name: str) -> list[tuple[str, str]]:
    """(namespace, name) of the Canaries using a MetricTemplate or AlertProvider of ``namespace`` whose
    ``secretRef`` names Secret ``name``: a Canary refused for a key missing from that Secret is
    checked again when the Secret changes. Secret changes are rare; this scans the namespace's
    templates and providers."""
    out: dict[tuple[str, str], None] = {}
    for template in store.items("MetricTemplate", namespace):
        if _secret_ref(template, "spec", "provider", "secretRef") == name:
            out.update(dict.fromkeys(canaries_for_template(store, namespace, _name(template))))
    for provider in store.items("AlertProvider", namespace):
        if _secret_ref(provider, "spec", "secretRef") == name:
            out.update(dict.fromkeys(canaries_for_alert_provider(store, namespace, _name(provider))))
    return list(out)


def dependents(index: CanaryIndex, kind: str, namespace: str, name: str) -> list[str]:
    """Names of the Canaries in ``namespace`` that a change of ``kind`` ``namespace/name`` concerns
    (the Canary itself for a Canary), without duplicates."""
    if kind == CANARY:
        return [name]
    if kind in ("ConfigMap", "Secret"):
        found = canaries_for_config(index.store, namespace, f"{kind.lower()}/{name}")
        found += index.for_generated(kind, namespace, name)
    else:
        found = index.for_generated(kind, namespace, name)
    return list(dict.fromkeys(found))
