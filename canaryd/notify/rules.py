"""Who gets which alert, and what it says besides the message (flagger-reference.md §7). Pure.

Severity filter: a provider subscribed at ``info`` gets everything, ``warn`` gets warn and error,
``error`` gets error only. An empty severity means ``info`` (Flagger's code sends nothing for it, while
its docs promise info; docs/compatibility.md).
"""

from __future__ import annotations

from canaryd.model.spec import CanarySpec

_RANK = {"info": 0, "warn": 1, "error": 2}


def severity_matches(subscribed: str, severity: str) -> bool:
    """Does a provider subscribed at ``subscribed`` receive an alert of ``severity``?"""
    wanted = _RANK.get(subscribed or "info")
    got = _RANK.get(severity)
    return wanted is not None and got is not None and got >= wanted


def with_details(message: str) -> bool:
    """Flagger adds the canary's details only to the two "detected" alerts that open a run."""
    return message.startswith("New ") and " detected, " in message


def traffic_routing(spec: CanarySpec) -> str:
    a = spec.analysis
    if spec.strategy == "ab-testing":
        return "A/B Testing"
    if spec.strategy == "blue-green":
        return "Blue/Green"
    if a.step_weights:
        steps = ",".join(str(w) for w in a.step_weights)
        return f"Weight steps: {steps} max: {a.max_weight}"
    return f"Weight step: {a.step_weight} max: {a.max_weight}"


def alert_fields(spec: CanarySpec, message: str, cluster_name: str = "") -> tuple[tuple[str, str], ...]:
    """``Cluster`` (when named) first, then Target, Failed checks threshold, Progress deadline and
    Traffic routing for the alerts that open a run."""
    fields: list[tuple[str, str]] = []
    if cluster_name:
        fields.append(("Cluster", cluster_name))
    if with_details(message):
        fields += [
            ("Target", f"{spec.target.kind}/{spec.target.name}.{spec.namespace}"),
            ("Failed checks threshold", str(spec.analysis.threshold)),
            ("Progress deadline", f"{spec.progress_deadline_seconds}s"),
            ("Traffic routing", traffic_routing(spec)),
        ]
    return tuple(fields)
