"""The primary side's names, and how the primary's pod spec differs from the target's.

Flagger names every copy it makes for the primary ``<name>-primary`` (the Deployment, its HPA, the
ConfigMap/Secret copies, the ``-primary`` Service). Promotion copies the target's pod spec onto the primary
with exactly two kinds of names changed (:func:`to_primary_pod_spec`):

* **config references**: every ConfigMap/Secret reference whose ``<kind>/<name>`` is tracked (the walk of
  :func:`canaryd.model.podconfigs.config_ref_slots`: volumes, projected sources, ``env.valueFrom``,
  ``envFrom``, of containers and initContainers) becomes ``<name>-primary``;
* **spread selectors**: in ``affinity.podAntiAffinity`` (required terms, and preferred terms'
  ``podAffinityTerm``) and ``topologySpreadConstraints``, every ``labelSelector.matchLabels`` value equal
  to the target's name becomes ``<target>-primary``, whatever its key, so primary pods spread among
  themselves. ``podAffinity`` and ``matchExpressions`` are copied unchanged.

:func:`from_primary_pod_spec` undoes exactly that (same fields, same tracked set, same name), so a
primary's template can be compared with the target's. ``from(to(x)) == x`` for every pod spec that does
not itself already use one of the names the rename produces (``<tracked name>-primary`` as an untracked
reference, ``<target>-primary`` in a renamed selector): no target is written that way.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from canaryd.model.podconfigs import config_ref_slots

PRIMARY_SUFFIX = "-primary"

JSON = dict[str, Any]


def primary_name(name: str) -> str:
    """The name of the primary's copy of ``name`` (``<name>-primary``)."""
    return f"{name}{PRIMARY_SUFFIX}"


def source_name(name: str) -> str | None:
    """The name a ``-primary`` copy was made from, or None when ``name`` is not such a copy."""
    return name[: -len(PRIMARY_SUFFIX)] if name.endswith(PRIMARY_SUFFIX) else None


def to_primary_pod_spec(pod_spec: Mapping[str, Any], target_name: str, tracked: Iterable[str]) -> JSON:
    """A copy of the target's pod spec as promotion writes it onto the primary (see the module text).
    ``tracked`` holds the keys (``configmap/<n>``, ``secret/<n>``) of the tracked configs."""
    return _rename(pod_spec, target_name, frozenset(tracked), to_primary=True)


def from_primary_pod_spec(pod_spec: Mapping[str, Any], target_name: str, tracked: Iterable[str]) -> JSON:
    """A copy of a primary's pod spec with :func:`to_primary_pod_spec`'s renames undone."""
    return _rename(pod_spec, target_name, frozenset(tracked), to_primary=False)


def _rename(pod_spec: Mapping[str, Any], target_name: str, tracked: frozenset[str], *,
            to_primary: bool) -> JSON:
    pod: JSON = copy.deepcopy(dict(pod_spec))
    for kind, ref, field in config_ref_slots(pod):
        name = str(ref[field])
        source = name if to_primary else source_name(name)
        if source is not None and f"{kind}/{source}" in tracked and isinstance(ref, dict):
            ref[field] = primary_name(source) if to_primary else source
    old, new = target_name, primary_name(target_name)
    if not to_primary:
        old, new = new, old
    for selector in _spread_selectors(pod):
        match = selector.get("matchLabels")
        if isinstance(match, dict):
            for key, value in match.items():
                if value == old:
                    match[key] = new
    return pod


def _spread_selectors(pod: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The label selectors the rename touches: pod anti-affinity terms and topology spread constraints."""
    affinity = pod.get("affinity")
    anti = affinity.get("podAntiAffinity") if isinstance(affinity, Mapping) else None
    terms: list[Any] = []
    if isinstance(anti, Mapping):
        terms += _list(anti.get("requiredDuringSchedulingIgnoredDuringExecution"))
        preferred = _list(anti.get("preferredDuringSchedulingIgnoredDuringExecution"))
        terms += [weighted.get("podAffinityTerm") for weighted in preferred]
    terms += _list(pod.get("topologySpreadConstraints"))
    for term in terms:
        selector = term.get("labelSelector") if isinstance(term, Mapping) else None
        if isinstance(selector, Mapping):
            yield selector


def _list(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []
