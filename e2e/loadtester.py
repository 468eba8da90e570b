"""``canaryd loadtester`` as the e2e suite runs it: a local process on loopback, installed in a test
namespace with ``manifests/loadtester`` and running under that ServiceAccount; with ``proxy`` (the mesh
simulator's proxy for the namespace) its commands reach in-cluster URLs such as ``http://podinfo.<ns>:9898/``.
Register it with the mesh for Service ``flagger-loadtester`` so webhooks can call
``http://flagger-loadtester.<ns>/`` (see e2e/test_loadtester.py). It requires a token, read from a file as in
the manifests (a Secret volume there); webhooks carry it the documented way, in the URL's user info
(:func:`webhook_url`), and :meth:`LoadTester.post` as a bearer token."""

from __future__ import annotations

import hashlib
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


def token_for(namespace: str) -> str:
    """The load tester's token in a test namespace: distinct per namespace, known to the test's webhooks."""
    return hashlib.sha256(f"e2e-loadtester-{namespace}".encode()).hexdigest()[:32]


def webhook_url(namespace: str, path: str = "/") -> str:
    """A webhook URL on the load tester of ``namespace``, with its token as the documented user info."""
    return f"http://token:{token_for(namespace)}@flagger-loadtester.{namespace}{path}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoadTester:
    """One ``canaryd loadtester`` process on loopback; its log in a file; its token (:func:`token_for`) in
    a file beside the log, unless ``"--insecure"`` is among ``args``."""

    def __init__(self, *, kubeconfig: str, namespace: str, log_path: Path, proxy: str | None = None,
                 args: tuple[str, ...] = ()) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log_path = log_path
        self.proxy = proxy
        self.args = args
        self.token = "" if "--insecure" in args else token_for(namespace)
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
        env.pop("LOADTESTER_TOKEN", None)
        cmd = [sys.executable, "-m", "canaryd", "loadtester", "--host", "127.0.0.1", "--port", str(self.port),
               "--kubeconfig", self.kubeconfig, "--state-namespace", self.namespace, *self.args]
        if self.token:
            token_file = self.log_path.with_name(f"{self.log_path.name}.token")
            token_file.write_text(self.token + "\n")
            cmd += ["--token-file", str(token_file)]
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

    async def post(self, path: str, body: dict[str, Any], *, token: str | None = None) -> tuple[int, str]:
        """POST as an operator would (``curl -H "Authorization: Bearer …"``); ``token`` "" sends none."""
        token = self.token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with aiohttp.ClientSession() as s, s.post(self.url + path, json=body, headers=headers) as resp:
            return resp.status, await resp.text()

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as resp:
            return str(resp.read().decode())


def install(bed: Any, namespace: str) -> str:
    """``kubectl -n NS apply -k manifests/loadtester`` and a kubeconfig of its ServiceAccount."""
    bed.kubectl("-n", namespace, "apply", "-k", str(MANIFESTS))
    return str(bed.kubeconfig_for_serviceaccount(namespace, "flagger-loadtester"))
