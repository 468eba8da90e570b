"""What one API request costs canaryd's process in CPU (issue 16: operator CPU per step), by layer: a bare
aiohttp session, then canaryd's KubeClient (retries, fence, metrics, credentials) — both over TLS to a
loopback server in another process (its CPU not counted), status-sized bodies (4 KiB) each way.

    python3 -m bench.bench_client [--requests 2000]

Prints client CPU microseconds per request (``time.process_time``), medians of 3 rounds."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson
import yaml

from canaryd.kube.client import KubeClient
from canaryd.kube.resources import CANARY

SERVER = """
import asyncio, sys
from pathlib import Path
from aiohttp import web
from e2e.loopback import serve, server_context

async def main():
    async def echo(request):
        return web.Response(body=await request.read(), content_type="application/json")
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner, port = await serve(app, server_context(Path(sys.argv[1])))
    print(port, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def body(size: int = 4096) -> dict[str, object]:
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": "bench", "resourceVersion": "1"},
            "spec": {"targetRef": {"name": "podinfo"}}, "status": {"phase": "Progressing", "pad": "x" * size}}


async def per_request(call: Callable[[], Awaitable[object]], n: int) -> float:
    """Client CPU µs per request over ``n`` sequential calls (after a warm-up)."""
    for _ in range(20):
        await call()
    started = time.process_time()
    for _ in range(n):
        await call()
    return 1e6 * (time.process_time() - started) / n


def start_server(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(work)], stdout=subprocess.PIPE,
                              cwd=Path(__file__).resolve().parents[1])
    assert server.stdout is not None
    return server, int(server.stdout.readline())


async def main(n: int, work: Path, port: int) -> None:
    url = f"https://127.0.0.1:{port}"
    kubeconfig = work / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "b",
        "clusters": [{"name": "b", "cluster": {"server": url, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "b", "user": {"token": "t"}}],
        "contexts": [{"name": "b", "context": {"cluster": "b", "user": "b"}}]}))
    payload = body()
    raw = orjson.dumps(payload)
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
    rows: dict[str, list[float]] = {}
    client = await KubeClient.from_config(str(kubeconfig))
    try:
        async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(ssl=insecure)) as bare:
            async def aiohttp_put() -> object:
                async with bare.put("/apis/flagger.app/v1beta1/namespaces/bench/canaries/podinfo/status",
                                    data=raw, headers={"Content-Type": "application/json"}) as resp:
                    return orjson.loads(await resp.read())

            async def kube_replace() -> object:
                return await client.replace(CANARY, "bench", "podinfo", payload, subresource="status")

            for _ in range(3):
                for name, call in (("aiohttp PUT (bare session)", aiohttp_put),
                                   ("KubeClient.replace (status)", kube_replace)):
                    rows.setdefault(name, []).append(await per_request(call, n))
    finally:
        await client.close()
    print(f"client CPU per request, µs (median of 3 × {n}; TLS, 4 KiB each way; pid {os.getpid()}):")
    for name, values in rows.items():
        print(f"  {name:32s} {statistics.median(values):7.0f}   (rounds: "
              + ", ".join(f"{v:.0f}" for v in values) + ")")


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python3 -m bench.bench_client", description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=2000)
    requests = p.parse_args().requests
    workdir = Path(tempfile.mkdtemp(prefix="canaryd-bench-client-"))
    proc, server_port = start_server(workdir)
    try:
        asyncio.run(main(requests, workdir, server_port))
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
