"""``canaryd loadtester`` as the e2e suite runs it: a local process on loopback, installed in a test
namespace with ``manifests/loadtester`` and running under that ServiceAccount; with ``proxy`` (the mesh
simulator's proxy for the namespace) its commands reach in-cluster URLs such as ``http://podinfo.<ns>:9898/``.
Register it with the mesh for Service ``flagger-loadtester`` so webhooks can call
``http://flagger-loadtester.<ns>/`` as written (see e2e/test_loadtester.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

from e2e.bed.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests" / "loadtester"
GATES = "canaryd-loadtester-gates"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoadTester:
    """One ``canaryd loadtester`` process on loopback; its log in a file."""

    def __init__(self, *, kubeconfig: str, namespace: str, log_path: Path, proxy: str | None = None,
                 args: tuple[str, ...] = ()) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log_path = log_path
        self.proxy = proxy
        self.args = args
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> LoadTester:
        self.launch()
        await wait_for(self.healthy, 30, f"the load tester on port {self.port} to answer /healthz")
        return self

    def launch(self) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        if self.proxy:
            env.update(HTTP_PROXY=self.proxy, http_proxy=self.proxy,
                       NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        cmd = [sys.executable, "-m", "canaryd", "loadtester", "--host", "127.0.0.1", "--port", str(self.port),
               "--kubeconfig", self.kubeconfig, "--state-namespace", self.namespace, *self.args]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            tail = self.log_path.read_text()[-2000:]
            raise AssertionError(f"load tester exited {self.proc.returncode}: {tail}")
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode

    async def register(self, mesh_url: str, service: str = "flagger-loadtester") -> None:
        """Put this process behind ``service`` in its namespace (the mesh simulator's registration)."""
        from e2e.mesh.control import MeshControl

        await MeshControl(mesh_url).register(self.namespace, service, f"127.0.0.1:{self.port}")

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, str]:
        async with aiohttp.ClientSession() as s, s.post(self.url + path, json=body) as resp:
            return resp.status, await resp.text()

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as resp:
            return str(resp.read().decode())


def install(bed: Any, namespace: str) -> str:
    """``kubectl -n NS apply -k manifests/loadtester`` and a kubeconfig of its ServiceAccount."""
    bed.kubectl("-n", namespace, "apply", "-k", str(MANIFESTS))
    return str(bed.kubeconfig_for_serviceaccount(namespace, "flagger-loadtester"))
