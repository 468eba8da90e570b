"""canaryd as the e2e suite runs it: a separate process per test namespace, under canaryd's own
ServiceAccount and the RBAC rules of ``manifests/`` (never the admin identity), reaching in-cluster URLs
through the mesh simulator's proxy for that namespace."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from e2e.bed.procs import terminate

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_NAMESPACE = "canaryd-system"
SERVICE_ACCOUNT = "canaryd"
IDENTITY = f"system:serviceaccount:{SYSTEM_NAMESPACE}:{SERVICE_ACCOUNT}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def install_rbac(cluster: Any) -> str:
    """Apply the namespace and RBAC manifests; return a kubeconfig with canaryd's ServiceAccount token."""
    cluster.kubectl("apply", "-f", str(ROOT / "manifests" / "namespace.yaml"),
                    "-f", str(ROOT / "manifests" / "rbac"))
    return str(cluster.kubeconfig_for_serviceaccount(SYSTEM_NAMESPACE, SERVICE_ACCOUNT))


def grant_leases(cluster: Any, namespace: str) -> None:
    """manifests/rbac/leader-election.yaml's Role and RoleBinding, in ``namespace`` instead of
    canaryd-system: for a test whose canaryd elects in its own namespace (``--leader-election-namespace``).
    The same rules for the same ServiceAccount, nothing wider: Leases stay namespaced."""
    path = ROOT / "manifests" / "rbac" / "leader-election.yaml"
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))


def leader_election_namespace(args: Sequence[str]) -> str | None:
    """The namespace of the Lease ``canaryd run`` with these arguments elects in (None: no election)."""
    if "--leader-elect" not in args:
        return None
    for i, arg in enumerate(args):
        if arg.startswith("--leader-election-namespace="):
            return arg.split("=", 1)[1]
        if arg == "--leader-election-namespace" and i + 1 < len(args):
            return args[i + 1]
    return SYSTEM_NAMESPACE


def json_log(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a process's log file (a non-JSON line, e.g. a traceback, as ``{"raw": line}``)."""
    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    for line in path.read_text(errors="replace").splitlines():
        try:
            obj = json.loads(line)
            out.append(obj if isinstance(obj, dict) else {"raw": line})
        except ValueError:
            out.append({"raw": line})
    return out


def log_messages(lines: list[dict[str, Any]]) -> list[str]:
    return [str(x.get("msg", x.get("raw", ""))) for x in lines]


def mesh_proxy(mesh_url: str | None, namespace: str) -> str | None:
    """The proxy URL whose bare names resolve in ``namespace`` (the simulator's control API)."""
    if not mesh_url:
        return None
    req = urllib.request.Request(
        f"{mesh_url}/_bed/proxy", data=json.dumps({"namespace": namespace}).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        port = int(json.load(resp)["port"])
    return f"http://127.0.0.1:{port}"


class Operator:
    """One canaryd process; its JSON log lines are kept in a file for assertions."""

    def __init__(self, *, kubeconfig: str, namespace: str, prometheus_url: str, proxy: str | None,
                 log_dir: Path, extra_env: dict[str, str] | None = None,
                 extra_args: Sequence[str] = (), name: str = "") -> None:
        """``name`` tells apart several processes for one namespace (log file and user agent);
        ``extra_args`` go after the standard flags (e.g. ``--leader-elect``)."""
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.prometheus_url = prometheus_url
        self.proxy = proxy
        suffix = f"-{name}" if name else ""
        self.log_path = log_dir / f"canaryd-{namespace}{suffix}.log"
        self.extra_env = dict(extra_env or {})
        self.extra_args = list(extra_args)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.user_agent = f"canaryd/e2e-{namespace}{suffix}"

    def start(self, **env: str) -> Operator:
        """Start (again); ``env`` adds variables for this start only (e.g. CANARYD_CRASH_AT)."""
        self.port = free_port()
        full = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        full.update(self.extra_env)
        full.update(env)
        if self.proxy:
            full.update(HTTP_PROXY=self.proxy, http_proxy=self.proxy,
                        NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        cmd = [sys.executable, "-m", "canaryd", "run", "--kubeconfig", self.kubeconfig,
               "--namespace", self.namespace, "--metrics-server", self.prometheus_url,
               "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "debug",
               "--user-agent", self.user_agent, *self.extra_args]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=full)
        log.close()
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, as a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait; returns the exit code."""
        return terminate(self.proc, timeout)

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def logs(self) -> list[dict[str, Any]]:
        """Parsed JSON log lines (non-JSON lines, e.g. a traceback, come back as ``{"raw": line}``)."""
        return json_log(self.log_path)

    def messages(self) -> list[str]:
        return log_messages(self.logs())

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False


def wait_ready(op: Operator, timeout: float = 60.0) -> None:
    """Block until the operator's caches are synced (its /readyz), or fail with its last log lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if op.ready():
            return
        if not op.running():
            break
        time.sleep(0.1)
    tail = "\n".join(op.messages()[-20:])
    raise AssertionError(f"canaryd for {op.namespace} not ready within {timeout:g}s; last log lines:\n{tail}")
