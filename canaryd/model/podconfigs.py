"""Which ConfigMaps and Secrets a pod uses, and which of them Flagger's config tracking follows.

One definition for the three readers: revision detection (their checksums), the primary's ``-primary``
copies, and the cache index that wakes a canary when one of them changes.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def pod_config_refs(pod_spec: Mapping[str, Any]) -> tuple[ConfigRef, ...]:
    """ConfigMaps and Secrets the pod reads: volumes (incl. projected sources), ``env.valueFrom`` and
    ``envFrom`` of containers and initContainers. A name referenced several ways is optional only if
    every reference is; sorted by key."""
    found: dict[tuple[str, str], bool] = {}

    def add(kind: str, ref: Any, name_field: str = "name") -> None:
        if not isinstance(ref, Mapping) or not ref.get(name_field):
            return
        key = (kind, str(ref[name_field]))
        found[key] = found.get(key, True) and ref.get("optional") is True

    for vol in _list(pod_spec.get("volumes")):
        add("configmap", vol.get("configMap"))
        add("secret", vol.get("secret"), "secretName")
        projected = vol.get("projected")
        if isinstance(projected, Mapping):
            for src in _list(projected.get("sources")):
                add("configmap", src.get("configMap"))
                add("secret", src.get("secret"))
    for container in _list(pod_spec.get("containers")) + _list(pod_spec.get("initContainers")):
        for env in _list(container.get("env")):
            value_from = env.get("valueFrom")
            if isinstance(value_from, Mapping):
                add("configmap", value_from.get("configMapKeyRef"))
                add("secret", value_from.get("secretKeyRef"))
        for env_from in _list(container.get("envFrom")):
            add("configmap", env_from.get("configMapRef"))
            add("secret", env_from.get("secretRef"))
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
