"""The load tester's Prometheus metrics, in a registry of its own (never the process-global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class LoadTesterMetrics:
    """``commands_total{type, result}`` (result: started, skipped, refused, busy, succeeded, failed,
    timeout), ``commands_running``, ``gate_requests_total{gate, action, code}``,
    ``requests_denied_total{reason}`` (unauthorized, namespace)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.commands = Counter(
            "canaryd_loadtester_commands_total", "Commands asked for, by task type and what became of them",
            ["type", "result"], registry=self.registry,
        )
        self.running = Gauge(
            "canaryd_loadtester_commands_running", "Commands running now", registry=self.registry
        )
        self.gates = Counter(
            "canaryd_loadtester_gate_requests_total", "Gate and rollback requests, by answer",
            ["gate", "action", "code"], registry=self.registry,
        )
        self.denied = Counter(
            "canaryd_loadtester_requests_denied_total", "Requests refused before reading the task",
            ["reason"], registry=self.registry,
        )
