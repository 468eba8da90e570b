"""The two operators under test behind one small interface: start for a namespace, pid, stop, and which
audit-log lines are theirs. Only one runs at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from bench.apicost import Who
from e2e.bed.cluster import Cluster
from e2e.flagger_process import AGENT_PREFIX, Flagger
from e2e.operator import IDENTITY, Operator, install_rbac, wait_ready


class UnderTest(Protocol):
    name: str

    @property
    def pid(self) -> int: ...

    def who(self) -> Who: ...

    def start(self) -> None: ...

    def alive(self) -> bool: ...

    def stop(self) -> None: ...

    def log_tail(self, lines: int = 15) -> str: ...

    def own_metrics(self) -> str | None: ...

    def events_logged(self) -> int | None: ...


class Canaryd:
    """canaryd under its own ServiceAccount (manifests/rbac), watching one namespace, info logs."""

    name = "canaryd"

    def __init__(self, bed: Cluster, namespace: str, log_dir: Path) -> None:
        self.op = Operator(kubeconfig=install_rbac(bed), namespace=namespace,
                           prometheus_url=str(bed.prometheus_url), proxy=None, log_dir=log_dir,
                           extra_args=("--log-level", "info"), name="bench")

    @property
    def pid(self) -> int:
        assert self.op.proc is not None
        return self.op.proc.pid

    def who(self) -> Who:
        return Who(self.op.user_agent, IDENTITY)

    def start(self) -> None:
        self.op.start()
        wait_ready(self.op, timeout=120)

    def alive(self) -> bool:
        return self.op.running()

    def stop(self) -> None:
        self.op.stop()

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.op.messages()[-lines:])

    def own_metrics(self) -> str | None:
        """canaryd's /metrics text (its own view of step lateness and API call times)."""
        try:
            return self.op.metrics_text()
        except OSError:
            return None

    def events_logged(self) -> int | None:
        """None: canaryd writes every Event it logs (the audit log counts them)."""
        return None


class FlaggerOp:
    """Flagger v1.44.0 with the bed's admin kubeconfig, ``-mesh-provider=istio``, watching one namespace."""

    name = "flagger"

    def __init__(self, bed: Cluster, namespace: str, log_dir: Path) -> None:
        self.proc = Flagger(kubeconfig=bed.kubeconfig, prometheus_url=str(bed.prometheus_url),
                            log_dir=log_dir, namespace=namespace)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def who(self) -> Who:
        return Who(AGENT_PREFIX)

    def start(self) -> None:
        self.proc.start()
        self.proc.wait_ready(timeout=120)

    def alive(self) -> bool:
        return self.proc.running()

    def stop(self) -> None:
        self.proc.stop()

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.proc.messages()[-lines:])

    def own_metrics(self) -> str | None:
        return None  # Flagger has no step-lateness or client-latency metric to compare

    def events_logged(self) -> int | None:
        """Events Flagger has recorded so far: it logs each one (caller ``controller/events.go``) before
        handing it to client-go, which may delay or drop it; compared with the Event writes in the audit log,
        this tells a late Event from one that never reaches the API server."""
        return sum(1 for x in self.proc.logs() if str(x.get("caller", "")).startswith("controller/events.go"))


def make(kind: str, bed: Cluster, namespace: str, log_dir: Path) -> UnderTest:
    if kind == "canaryd":
        return Canaryd(bed, namespace, log_dir)
    if kind == "flagger":
        return FlaggerOp(bed, namespace, log_dir)
    raise ValueError(f"unknown operator {kind!r} (canaryd | flagger)")
