"""What a Canary may reach in another namespace: MetricTemplates and AlertProviders named with a
``namespace`` of their own.

With ``--no-cross-namespace-refs`` (Flagger's ``-no-cross-namespace-refs``) such references are refused
with Flagger's texts. Without it (Flagger's default) they are allowed, but the values a Canary puts into
another namespace's template (``templateVariables``) are restricted to :data:`SAFE_VALUE_PATTERN`, so a
tenant cannot rewrite a shared template's PromQL and run it with the template owner's credentials and
headers. A same-namespace template's variables stay free: its owner is the Canary's author.
"""

from __future__ import annotations

import re

from canaryd.model.fields import FieldError
from canaryd.model.shapes import shown
from canaryd.model.spec import AnalysisSpec, MetricSpec

SAFE_VALUE_PATTERN = "^[A-Za-z0-9_.:/-]*$"
SAFE_VALUE = re.compile(r"[A-Za-z0-9_.:/-]*")
_BLOCKED = "cross-namespace references are blocked"  # Flagger's text


def is_safe_value(text: str) -> bool:
    """May ``text`` be put into a template of another namespace?"""
    return SAFE_VALUE.fullmatch(text) is not None


def template_namespace(metric: MetricSpec, namespace: str) -> str:
    """The namespace of a metric's MetricTemplate (the Canary's when the ref names none)."""
    return str((metric.template_ref or {}).get("namespace") or namespace)


def check_references(
    namespace: str, analysis: AnalysisSpec, field: str, *, allow_cross_namespace: bool
) -> None:
    """Raise :class:`FieldError` for a reference the settings refuse, or an unsafe variable of a template
    in another namespace (the message names the variable)."""
    for i, metric in enumerate(analysis.metrics):
        if metric.template_ref is None:
            continue
        tname, tns = str(metric.template_ref.get("name") or ""), template_namespace(metric, namespace)
        if tns == namespace:
            continue
        if not allow_cross_namespace:
            raise FieldError(f"can't access metric template {tname}.{tns}, {_BLOCKED}")
        for key, value in metric.template_variables.items():
            if not isinstance(value, str) or not is_safe_value(value):
                raise FieldError(
                    f"{field}.metrics[{i}].templateVariables.{shown(str(key))} {shown(value)} is refused: "
                    f"MetricTemplate {tname}.{tns} is in another namespace, so its variables must match "
                    f"{SAFE_VALUE_PATTERN} (letters, digits and _ . : / -)"
                )
    for alert in analysis.alerts:
        pns = alert.provider_namespace or namespace
        if pns != namespace and not allow_cross_namespace:
            raise FieldError(f"can't access alert provider {alert.provider_name}.{pns}, {_BLOCKED}")
