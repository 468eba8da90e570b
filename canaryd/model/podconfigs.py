"""Which ConfigMaps and Secrets a pod uses, and which of them Flagger's config tracking follows.

One walk over a pod spec's references (:func:`config_ref_slots`) for every reader: revision detection
(their checksums), the primary's ``-primary`` copies and the inverse rename (:mod:`canaryd.model.primary`),
and the cache index that wakes a canary when one of them changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

TRACKABLE_SECRET_TYPES = frozenset(
    ("Opaque", "kubernetes.io/basic-auth", "kubernetes.io/ssh-auth", "kubernetes.io/tls")
)
CONFIG_TRACKING_ANNOTATION = "flagger.app/config-tracking"


@dataclass(frozen=True)
class ConfigRef:
    kind: str  # "configmap" | "secret"
    name: str
    optional: bool = False

    @property
    def key(self) -> str:
        """``configmap/<name>`` or ``secret/<name>``: the key of ``status.trackedConfigs``."""
        return f"{self.kind}/{self.name}"


def _list(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def config_ref_slots(pod_spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any], str]]:
    """Every place a pod names a ConfigMap or Secret, as ``(kind, reference, name field)``: volumes
    (incl. projected sources), ``env.valueFrom`` and ``envFrom`` of containers and initContainers.

    The one walk behind reading the references (:func:`pod_config_refs`) and renaming them to the
    ``-primary`` copies and back (:mod:`canaryd.model.primary`); references without a name are skipped.
    The reference is the pod spec's own mapping, so a caller holding a copy may change its name field."""
    def slot(kind: str, ref: Any, name_field: str = "name") -> Iterator[tuple[str, Mapping[str, Any], str]]:
        if isinstance(ref, Mapping) and ref.get(name_field):
            yield kind, ref, name_field

    for vol in _list(pod_spec.get("volumes")):
        yield from slot("configmap", vol.get("configMap"))
        yield from slot("secret", vol.get("secret"), "secretName")
        projected = vol.get("projected")
        if isinstance(projected, Mapping):
            for src in _list(projected.get("sources")):
                yield from slot("configmap", src.get("configMap"))
                yield from slot("secret", src.get("secret"))
    for container in _list(pod_spec.get("containers")) + _list(pod_spec.get("initContainers")):
        for env in _list(container.get("env")):
            value_from = env.get("valueFrom")
            if isinstance(value_from, Mapping):
                yield from slot("configmap", value_from.get("configMapKeyRef"))
                yield from slot("secret", value_from.get("secretKeyRef"))
        for env_from in _list(container.get("envFrom")):
            yield from slot("configmap", env_from.get("configMapRef"))
            yield from slot("secret", env_from.get("secretRef"))


def pod_config_refs(pod_spec: Mapping[str, Any]) -> tuple[ConfigRef, ...]:
    """ConfigMaps and Secrets the pod reads (every :func:`config_ref_slots`). A name referenced several
    ways is optional only if every reference is; sorted by key."""
    found: dict[tuple[str, str], bool] = {}
    for kind, ref, name_field in config_ref_slots(pod_spec):
        key = (kind, str(ref[name_field]))
        found[key] = found.get(key, True) and ref.get("optional") is True
    return tuple(ConfigRef(k, n, opt) for (k, n), opt in sorted(found.items()))


def template_pod_spec(workload: Mapping[str, Any]) -> Mapping[str, Any]:
    """``spec.template.spec`` of a Deployment (empty when absent)."""
    spec = workload.get("spec")
    template = spec.get("template") if isinstance(spec, Mapping) else None
    pod = template.get("spec") if isinstance(template, Mapping) else None
    return pod if isinstance(pod, Mapping) else {}


def config_tracking_enabled(kind: str, obj: Mapping[str, Any]) -> bool:
    """Flagger's exclusions: annotation ``flagger.app/config-tracking: disable…``; Secrets of types
    other than Opaque, basic-auth, ssh-auth and tls. ``kind`` is ``configmap`` or ``secret``."""
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    if isinstance(annotations, Mapping) and str(annotations.get(CONFIG_TRACKING_ANNOTATION, "")).startswith(
        "disable"
    ):
        return False
    return kind != "secret" or str(obj.get("type") or "Opaque") in TRACKABLE_SECRET_TYPES
