"""Defaults written once, read by the spec parser, the engine, ``Settings`` and the command line.

Flagger's defaults where canaryd mirrors a Flagger flag (``-selector-labels``, ``-metrics-server``,
``-log-level``); canaryd's own otherwise. Plain immutable values: no module state.
"""

from __future__ import annotations

# labels that select a workload's pods, first match in the target's spec.selector.matchLabels wins
SELECTOR_LABELS: tuple[str, ...] = ("app", "name", "app.kubernetes.io/name")
# Prometheus for the builtin checks and inline queries when a Canary names none
METRICS_SERVER = "http://prometheus:9090"
LOG_LEVEL = "info"
# the HTTP endpoints /metrics, /healthz, /readyz
HTTP_PORT = 8080
HTTP_HOST = "0.0.0.0"
# Events' ``source.component``: Flagger's, so `kubectl get events --field-selector source=flagger` and
# scripts selecting Events by component keep working (``--event-source-component canaryd`` to tell apart)
EVENT_SOURCE_COMPONENT = "flagger"
