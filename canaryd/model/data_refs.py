"""Which ConfigMaps and Secrets a Canary reads the *data* of (not only the metadata), found from the
watch cache: the runtime reads those whose data it does not hold (runtime/config_data.py), and no other."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from canaryd.model.podconfigs import pod_config_refs, template_pod_spec
from canaryd.model.primary import primary_name
from canaryd.model.providers import parse_metric_template
from canaryd.model.references import template_namespace
from canaryd.model.shapes import ShapeError
from canaryd.model.spec import CanarySpec

Lookup = Callable[[str, str], Mapping[str, Any] | None]
"""(namespace, name) -> the cached object, or None."""

KINDS = {"configmap": "ConfigMap", "secret": "Secret"}


def data_needed(spec: CanarySpec, deployments: Lookup, templates: Lookup, *,
                config_tracking: bool) -> tuple[tuple[str, str, str], ...]:
    """(kind, namespace, name) of every object whose data a pass of ``spec``'s task may read, without
    duplicates, in a stable order:

    * with config tracking, each ConfigMap/Secret the target's pods use (its checksum makes a new
      revision; a Secret's type decides whether it is tracked at all) and its ``-primary`` copy (promotion
      compares the two checksums);
    * the Secret each referenced MetricTemplate's ``secretRef`` names, in the template's namespace (the
      provider's keys are checked in it before a run).
    """
    out: dict[tuple[str, str, str], None] = {}
    ns = spec.namespace
    target = deployments(ns, spec.target.name)
    if config_tracking and target is not None:
        for ref in pod_config_refs(template_pod_spec(target)):
            kind = KINDS[ref.kind]
            out[(kind, ns, ref.name)] = None
            out[(kind, ns, primary_name(ref.name))] = None
    if not spec.skip_analysis:
        for metric in spec.analysis.metrics:
            if metric.template_ref is None:
                continue
            tns = template_namespace(metric, ns)
            raw = templates(tns, str(metric.template_ref.get("name") or ""))
            if raw is None:
                continue
            try:
                secret = parse_metric_template(raw).provider.secret_name
            except ShapeError:
                continue
            if secret:
                out[("Secret", tns, secret)] = None
    return tuple(out)
