"""The operators the crowded-cluster benchmark measures, behind one small interface: a canaryd tree (a
directory holding a ``canaryd`` package, run as ``python3 -m canaryd``) or the real Flagger v1.44.0. Each
is started against a given API server address (the byte-counting proxy), cluster-wide, and says when it
is ready and which of its watches listed again after a forced relist, where it can tell."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Protocol

import yaml

from bench.apicost import Who
from e2e.bed.cluster import Cluster
from e2e.bed.procs import terminate
from e2e.flagger_process import AGENT_PREFIX, Flagger
from e2e.operator import IDENTITY, free_port


class Subject(Protocol):
    label: str

    @property
    def pid(self) -> int: ...

    def who(self) -> Who: ...

    def start(self, master: str, log_dir: Path, run_label: str) -> None: ...

    def alive(self) -> bool: ...

    def ready(self) -> bool: ...

    def metrics_text(self) -> str | None: ...

    def stop(self) -> None: ...

    def log_tail(self, lines: int = 5) -> str: ...


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return str(resp.read().decode()) if resp.status == 200 else None
    except OSError:
        return None


class CanarydTree:
    """canaryd from ``tree`` under its own ServiceAccount; ready = ``/readyz`` (its caches synced)."""

    def __init__(self, label: str, tree: Path, kubeconfig: str, prometheus_url: str) -> None:
        self.label, self.tree, self.kubeconfig, self.prometheus_url = label, tree, kubeconfig, prometheus_url
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = Path()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def who(self) -> Who:
        return Who(f"canaryd/crowd-{self.label}", IDENTITY)

    def start(self, master: str, log_dir: Path, run_label: str) -> None:
        self.port = free_port()
        cmd = [sys.executable, "-m", "canaryd", "run", "--kubeconfig", self.kubeconfig, "--master", master,
               "--metrics-server", self.prometheus_url, "--host", "127.0.0.1", "--port", str(self.port),
               "--log-level", "info", "--user-agent", f"canaryd/crowd-{self.label}"]
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        self.log_path = log_dir / f"canaryd-{self.label}-{run_label}.log"
        with self.log_path.open("ab") as logf:
            self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=self.tree, env=env)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        return _get(f"http://127.0.0.1:{self.port}/readyz") is not None

    def metrics_text(self) -> str | None:
        return _get(f"http://127.0.0.1:{self.port}/metrics")

    def stop(self) -> None:
        terminate(self.proc, timeout=20)

    def log_tail(self, lines: int = 5) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def proxied_kubeconfig(source: str, master: str, dest: Path) -> str:
    """A copy of the kubeconfig ``source`` whose clusters point at ``master`` (the server's certificate
    names 127.0.0.1, so TLS still verifies through a loopback proxy)."""
    doc = yaml.safe_load(Path(source).read_text())
    for cluster in doc.get("clusters") or []:
        cluster["cluster"]["server"] = master
    dest.write_text(yaml.safe_dump(doc))
    return str(dest)


class FlaggerSubject:
    """Flagger v1.44.0 with the bed's admin kubeconfig, every namespace, ``-mesh-provider=istio``; ready =
    ``/healthz``, which Flagger serves before its informer has synced (Initialized is the comparable
    figure). It has no metric of its watches: a relist is seen only in the bytes."""

    label = "flagger"

    def __init__(self, bed: Cluster) -> None:
        self.bed = bed
        self.flagger: Flagger | None = None

    @property
    def pid(self) -> int:
        assert self.flagger is not None
        return self.flagger.pid

    def who(self) -> Who:
        return Who(AGENT_PREFIX)

    def start(self, master: str, log_dir: Path, run_label: str) -> None:
        dest = log_dir / f"flagger-{run_label}.kubeconfig"
        kubeconfig = proxied_kubeconfig(self.bed.kubeconfig, master, dest)
        self.flagger = Flagger(kubeconfig=kubeconfig, prometheus_url=str(self.bed.prometheus_url),
                               log_dir=log_dir / run_label)
        self.flagger.start()

    def alive(self) -> bool:
        return self.flagger is not None and self.flagger.running()

    def ready(self) -> bool:
        return self.flagger is not None and self.flagger.ready()

    def metrics_text(self) -> str | None:
        return None

    def stop(self) -> None:
        if self.flagger is not None:
            self.flagger.stop()

    def log_tail(self, lines: int = 5) -> str:
        return "" if self.flagger is None else "\n".join(self.flagger.messages()[-lines:])
