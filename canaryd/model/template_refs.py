"""Is every MetricTemplate a Canary references usable? Answered from the watch cache before a run starts,
so a template of a provider canaryd does not implement is a ``Valid=False`` Canary, never a rollback
after ``threshold`` failed checks (docs/compatibility.md, scope)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from canaryd.model.providers import missing_secret_key, parse_metric_template, unsupported_provider
from canaryd.model.references import template_namespace
from canaryd.model.shapes import ShapeError
from canaryd.model.spec import CanarySpec

TemplateLookup = Callable[[str, str], Mapping[str, Any] | None]
"""(namespace, name) -> the object from the watch cache (a MetricTemplate, or a Secret), or None."""


def template_problem(spec: CanarySpec, lookup: TemplateLookup,
                     secrets: TemplateLookup | None = None) -> str | None:
    """The first referenced template's refusal message (``metric X: MetricTemplate ns/name has provider
    datadog, which canaryd does not support yet; supported: prometheus``), else None. A missing or
    malformed template is left to the check (Flagger's texts, at run time), and so is a secret not in
    the cache; a secret without a key the provider needs is refused here, naming the key."""
    for metric in spec.analysis.metrics:
        if metric.template_ref is None or spec.skip_analysis:
            continue
        name = str(metric.template_ref.get("name") or "")
        namespace = template_namespace(metric, spec.namespace)
        raw = lookup(namespace, name)
        if raw is None:
            continue
        try:
            provider = parse_metric_template(raw).provider
        except ShapeError:
            continue
        problem = unsupported_provider(metric.name, namespace, name, provider.type)
        if problem is None:
            keys = _secret_keys(secrets, namespace, provider.secret_name)
            problem = missing_secret_key(metric.name, namespace, name, provider, keys)
        if problem is not None:
            return problem
    return None


def _secret_keys(secrets: TemplateLookup | None, namespace: str, name: str) -> frozenset[str] | None:
    """The keys of a Secret in the cache (``dataKeys``; ``data`` and ``stringData`` of a full object),
    None when it is not there."""
    obj = secrets(namespace, name) if secrets is not None and name else None
    if obj is None:
        return None
    keys: set[str] = set()
    for part in ("data", "stringData"):
        value = obj.get(part)
        if isinstance(value, Mapping):
            keys.update(str(k) for k in value)
    names = obj.get("dataKeys")  # the watch cache keeps only the key names (canaryd.cache.slim)
    if isinstance(names, list):
        keys.update(str(k) for k in names)
    return frozenset(keys)


def references_template(spec: CanarySpec, namespace: str, name: str) -> bool:
    """Whether a change of MetricTemplate ``namespace/name`` concerns this Canary."""
    return any(m.template_ref is not None and str(m.template_ref.get("name") or "") == name
               and template_namespace(m, spec.namespace) == namespace for m in spec.analysis.metrics)
