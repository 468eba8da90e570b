"""``python -m e2e loadtester NS``: the process behind ``http://flagger-loadtester.NS/`` on the bed, and
``python -m e2e env``: the shell settings for working with the bed by hand (README.md's tutorial).

The bed's pods are kwok stand-ins that run nothing, so ``kubectl apply -k manifests/examples/`` creates
the load tester's Deployment, Service, ServiceAccount, Role and token Secret, but no process answers.
This command runs ``canaryd loadtester`` as a bed process (stopped by ``python -m e2e down``) as the
Deployment would: under the ``flagger-loadtester`` ServiceAccount of NS, with the token of Secret
``flagger-loadtester-token``, its commands reaching in-cluster names through the mesh simulator; then
registers it with the simulator as Service ``flagger-loadtester`` of NS. Cluster DNS does not exist on
the bed either: ``env`` prints ``HTTP_PROXY`` (the simulator's proxy, which resolves qualified names such
as ``flagger-loadtester.test``), ``KUBECONFIG`` and a ``PATH`` with the bed's kubectl."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shlex
import sys
import time
import urllib.request
from pathlib import Path

from e2e.bed.bed import Bed
from e2e.bed.errors import BedError
from e2e.bed.procs import free_port
from e2e.bed.versions import checkout_root

SERVICE = "flagger-loadtester"
TOKEN_SECRET = "flagger-loadtester-token"
NO_PROXY = "127.0.0.1,localhost"


def proc_name(namespace: str) -> str:
    return f"loadtester-{namespace}"


def _mesh_url(bed: Bed) -> str:
    if not bed.mesh_url:
        raise BedError("loadtester", f"the bed in {bed.dir} runs no mesh simulator (started with --no-mesh?)")
    return bed.mesh_url


def proxy_url(bed: Bed, namespace: str | None = None) -> str:
    """The simulator's proxy: bare names resolve in ``namespace``; None: qualified names only."""
    req = urllib.request.Request(f"{_mesh_url(bed)}/_bed/proxy",
                                 data=json.dumps({"namespace": namespace or ""}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return f"http://127.0.0.1:{int(json.load(resp)['port'])}"


def env_lines(bed: Bed) -> list[str]:
    """``export`` lines for a shell: the bed's kubeconfig and kubectl, and its proxy for in-cluster names."""
    proxy = proxy_url(bed)
    kubectl_dir = str(Path(bed.kubectl_path).parent)
    values = {"KUBECONFIG": bed.kubeconfig, "PATH": f"{kubectl_dir}:$PATH",
              "HTTP_PROXY": proxy, "http_proxy": proxy, "NO_PROXY": NO_PROXY, "no_proxy": NO_PROXY}
    out = []
    for key, value in values.items():
        quoted = f'"{value}"' if key == "PATH" else shlex.quote(value)  # PATH: $PATH expands in the shell
        out.append(f"export {key}={quoted}")
    return out


def _token(bed: Bed, namespace: str, timeout: float) -> str:
    """The token in Secret flagger-loadtester-token of ``namespace`` (waits for it to be applied)."""
    deadline = time.monotonic() + timeout
    while True:
        got = bed.kubectl("-n", namespace, "get", "secret", TOKEN_SECRET, "-o", "jsonpath={.data.token}",
                          check=False)
        if got.returncode == 0 and got.stdout.strip():
            return base64.b64decode(got.stdout.strip()).decode().strip()
        if time.monotonic() > deadline:
            raise BedError("loadtester", f"no Secret {namespace}/{TOKEN_SECRET} with key token after "
                           f"{timeout:g}s (kubectl apply -k manifests/examples/ creates it in test; "
                           "manifests/loadtester/kustomization.yaml says how elsewhere)", got.stderr)
        time.sleep(0.5)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


async def _register(mesh_url: str, namespace: str, port: int) -> None:
    from e2e.mesh.control import MeshControl

    await MeshControl(mesh_url).register(namespace, SERVICE, f"127.0.0.1:{port}")


def start(bed: Bed, namespace: str, *, timeout: float = 60.0) -> int:
    """Run (or re-run) the load tester of ``namespace``; returns its port once it answers and the mesh
    routes ``flagger-loadtester.<namespace>`` to it."""
    name = proc_name(namespace)
    mesh = _mesh_url(bed)
    bed.procs.stop(name)
    token = _token(bed, namespace, timeout)
    home = bed.dir / name
    home.mkdir(parents=True, exist_ok=True)
    token_file = home / "token"
    token_file.touch(mode=0o600)
    token_file.write_text(token + "\n")
    kubeconfig = bed.kubeconfig_for_serviceaccount(namespace, SERVICE, duration="24h")
    proxy = proxy_url(bed, namespace)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(HTTP_PROXY=proxy, http_proxy=proxy, NO_PROXY=NO_PROXY, no_proxy=NO_PROXY)
    env.pop("LOADTESTER_TOKEN", None)
    port = free_port()
    bed.procs.start(name, [sys.executable, "-m", "canaryd", "loadtester", "--host", "127.0.0.1",
                           "--port", str(port), "--kubeconfig", kubeconfig, "--state-namespace", namespace,
                           "--token-file", str(token_file)], env=env, cwd=checkout_root())
    bed.wait(name, lambda: _healthy(port), timeout, "answering /healthz")
    asyncio.run(_register(mesh, namespace, port))
    return port
