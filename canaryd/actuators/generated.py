"""What every object a Canary generates shares (flagger-reference.md §4): the generation error and
settings, the metadata rules (toolkit keys, copied annotations, ``-include-label-prefix``, the owner
reference) and the selector label.

Kept apart from the per-kind builders (``primary_objects``, ``service_objects``, ``istio_objects``) so
each of those depends only on this module and none on another kind's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

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


def object_meta(spec: CanarySpec, name: str, labels: Mapping[str, str] | None = None,
                annotations: Mapping[str, str] | None = None, owned: bool = True) -> JSON:
    """``metadata`` of a generated object; owned ones carry the Canary's controller reference."""
    meta: JSON = {"name": name, "namespace": spec.namespace}
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    if owned:
        meta["ownerReferences"] = [owner_reference(spec)]
    return meta


# ---------------------------------------------------------------------------------------------------
# selector label


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
