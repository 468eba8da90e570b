"""Writes sorted by what they write (Canary status, VirtualService, target Deployment, Event create, …), so a
feature that adds writes (history, judge reports, Warning Events) shows up as its own row of the report
instead of as a regression of unknown origin. The audit log is at Metadata level: the kind comes from the
resource, subresource, verb and object name, not from the body."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from e2e.bed.audit import AuditEvent

NAMES = {
    "virtualservices": "VirtualService", "destinationrules": "DestinationRule", "services": "Service",
    "horizontalpodautoscalers": "HPA", "leases": "Lease", "configmaps": "ConfigMap", "secrets": "Secret",
    "metrictemplates": "MetricTemplate", "alertproviders": "AlertProvider", "pods": "Pod",
}


def kind_of(ev: AuditEvent) -> str:
    """One row of the per-kind table: ``<what> <verb>``. Deployments are split into the target (scale-up and
    scale-down of the canary) and the primary (creation, promotion), Canaries into status and the rest
    (finalizers, annotations)."""
    verb = ev.verb
    if ev.resource == "canaries":
        return f"Canary status {verb}" if ev.subresource == "status" else f"Canary {verb}"
    if ev.resource == "events":
        return f"Event {verb}"
    if ev.resource == "deployments":
        role = "primary" if ev.name.endswith("-primary") else "target"
        sub = f"/{ev.subresource}" if ev.subresource else ""
        return f"Deployment {role}{sub} {verb}"
    name = NAMES.get(ev.resource, ev.resource)
    return f"{name}/{ev.subresource} {verb}" if ev.subresource else f"{name} {verb}"


ORDER = ("Canary status", "Canary ", "VirtualService", "DestinationRule", "Deployment target",
         "Deployment primary", "Service", "HPA", "Event create", "Event patch", "Lease")


def _rank(kind: str) -> tuple[int, str]:
    for i, prefix in enumerate(ORDER):
        if kind.startswith(prefix):
            return i, kind
    return len(ORDER), kind


def table(columns: Sequence[tuple[str, Mapping[str, int], float]]) -> str:
    """A Markdown table: one row per kind, one column per run (``(heading, writes by kind, divisor)``; each
    cell is writes divided by the divisor, e.g. canaries × rounds), plus the total."""
    kinds = sorted({k for _, by, _ in columns for k in by}, key=_rank)
    head = "| writes by kind | " + " | ".join(h for h, _, _ in columns) + " |"
    rows = [head, "|---|" + "---|" * len(columns)]
    for k in kinds:
        cells = [f"{by.get(k, 0) / d:.2f}" if d else "–" for _, by, d in columns]
        rows.append(f"| {k} | " + " | ".join(cells) + " |")
    totals = [f"**{sum(by.values()) / d:.2f}**" if d else "–" for _, by, d in columns]
    rows.append("| **all writes** | " + " | ".join(totals) + " |")
    return "\n".join(rows)
