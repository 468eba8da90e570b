"""SaaS provider calls honour ``HTTPS_PROXY`` / ``NO_PROXY`` and a custom CA bundle (``SSL_CERT_FILE``),
read from canaryd's environment as canaryd reads it at start: a fresh process
(:mod:`.outbound_probe`) queries TLS fakes signed by a test CA, through a loopback CONNECT proxy that
counts its tunnels (docs/providers.md, "Proxy and CA")."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from canaryd.analysis.outbound import outbound_session, proxy_for
from e2e.loopback import serve

from .fakes import DatadogFake
from .signalflow import DOUBLE, SignalFlowFake, control, data

ROOT = Path(__file__).resolve().parents[3]
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "WSS_PROXY",
              "wss_proxy", "WS_PROXY", "ws_proxy", "ALL_PROXY", "all_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR")


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test CA and a server certificate it signed for 127.0.0.1 and localhost."""
    d = tmp_path_factory.mktemp("outbound-pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=canaryd-test-ca",
            "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=provider", "-keyout", str(d / "server.key"),
            "-out", str(d / "server.csr"))
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.crt"), "-CAkey",
            str(d / "ca.key"), "-CAcreateserial", "-days", "1", "-out", str(d / "server.crt"), "-extfile",
            str(d / "server.ext"))
    return d


@dataclass
class ConnectProxy:
    """An HTTP proxy that only tunnels (``CONNECT host:port``), recording each tunnel's target."""

    tunnels: list[str] = field(default_factory=list)
    url: str = ""
    server: asyncio.Server | None = None

    async def start(self) -> ConnectProxy:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        self.tunnels.append(target)
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while chunk := await src.read(65536):
            dst.write(chunk)
            await dst.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        dst.close()


@pytest.fixture
async def peers(pki: Path) -> AsyncIterator[tuple[DatadogFake, SignalFlowFake, ConnectProxy]]:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki / "server.crt", pki / "server.key")
    dd, sf, proxy = DatadogFake(), SignalFlowFake(), ConnectProxy()
    await dd.start(tls)
    await sf.start(tls)
    await proxy.start()
    yield dd, sf, proxy
    await dd.stop()
    await sf.stop()
    await proxy.stop()


async def probe(cases: list[dict[str, Any]], env: dict[str, str]) -> list[dict[str, Any]]:
    base = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.analysis.providers.outbound_probe", orjson.dumps(cases).decode(),
        cwd=ROOT, env={**base, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return [orjson.loads(line) for line in out.splitlines()]


def dd_case(fake: DatadogFake, host: str = "127.0.0.1") -> dict[str, Any]:
    return {"type": "datadog", "address": fake.url.replace("127.0.0.1", host), "query": "avg:x{*}",
            "secrets": {"datadog_api_key": fake.api_key, "datadog_application_key": fake.app_key}}


def sf_case(fake: SignalFlowFake) -> dict[str, Any]:
    return {"type": "splunk", "address": fake.url, "query": "data('x').publish()",
            "secrets": {"sf_token_key": fake.token}}


async def test_saas_calls_go_through_https_proxy_unless_no_proxy_and_trust_the_ca_bundle(
        peers: tuple[DatadogFake, SignalFlowFake, ConnectProxy], pki: Path) -> None:
    dd, sf, proxy = peers
    sf.script = [data([(DOUBLE, 1, 0.5)]), control("END_OF_CHANNEL")]
    env = {"SSL_CERT_FILE": str(pki / "ca.crt"), "HTTPS_PROXY": proxy.url, "NO_PROXY": "localhost"}
    results = await probe([dd_case(dd), sf_case(sf), dd_case(dd, "localhost")], env)
    assert results == [{"value": 99.5}, {"value": 0.5}, {"value": 99.5}]
    # Datadog (HTTPS) and Splunk (WSS) through the proxy; the NO_PROXY host directly
    dd_port, sf_port = dd.url.rsplit(":", 1)[1], sf.url.rsplit(":", 1)[1]
    assert proxy.tunnels == [f"127.0.0.1:{dd_port}", f"127.0.0.1:{sf_port}"]
    assert len(dd.seen) == 2 and sf.of_type("execute")


async def test_without_the_ca_bundle_the_certificate_is_refused_naming_provider_and_host(
        peers: tuple[DatadogFake, SignalFlowFake, ConnectProxy]) -> None:
    dd, sf, proxy = peers
    results = await probe([dd_case(dd), sf_case(sf)], {"SSL_CERT_DIR": "/nonexistent",
                                                       "SSL_CERT_FILE": "/nonexistent"})
    dd_host, sf_host = dd.url.removeprefix("https://"), sf.url.removeprefix("https://")
    assert results[0]["error"].startswith(f"Datadog {dd_host} unreachable: ")
    assert results[1]["error"].startswith(f"Splunk {sf_host} unreachable: ")
    assert all("CERTIFICATE_VERIFY_FAILED" in r["error"] or "certificate verify failed" in r["error"]
               for r in results), results
    assert dd.seen == [] and sf.received == [] and proxy.tunnels == []


async def test_netrc_credentials_are_never_sent_to_a_peer(
        peers: tuple[DatadogFake, SignalFlowFake, ConnectProxy], pki: Path, tmp_path: Path) -> None:
    """A Canary author chooses the host: a ``~/.netrc`` entry for it must not turn into an Authorization
    header (aiohttp sends one when its session trusts the environment; canaryd's does not)."""
    dd, _, _ = peers
    (tmp_path / ".netrc").write_text("machine 127.0.0.1 login operator password s3cret\n")
    (tmp_path / ".netrc").chmod(0o600)
    results = await probe([dd_case(dd)], {"SSL_CERT_FILE": str(pki / "ca.crt"), "HOME": str(tmp_path),
                                          "NETRC": str(tmp_path / ".netrc")})
    assert results == [{"value": 99.5}]
    assert len(dd.seen) == 1
    assert not any(k.lower() == "authorization" for k in dd.seen[0].headers), dd.seen[0].headers


P, Q = "http://p:3128", "http://q:8080"
PROXY_TABLE = [  # (environment, URL, proxy)
    ({}, "https://api.example.com/x", None),
    ({"HTTPS_PROXY": P}, "https://api.example.com/x", P),
    ({"https_proxy": P}, "wss://stream.example.com/v2", P),
    ({"HTTPS_PROXY": P, "https_proxy": Q}, "https://api.example.com/x", P),  # Go: upper case first
    ({"HTTPS_PROXY": P}, "http://prometheus:9090/api", None),
    ({"HTTP_PROXY": Q}, "http://prometheus:9090/api", Q),
    ({"HTTP_PROXY": Q}, "ws://stream.example.com/v2", Q),
    ({"HTTPS_PROXY": P, "NO_PROXY": "example.com"}, "https://api.example.com/x", None),
    ({"HTTPS_PROXY": P, "NO_PROXY": "example.com"}, "https://example.com/x", None),
    ({"HTTPS_PROXY": P, "NO_PROXY": ".example.com"}, "https://example.com/x", P),  # subdomains only
    ({"HTTPS_PROXY": P, "NO_PROXY": ".example.com"}, "https://api.example.com/x", None),
    ({"HTTPS_PROXY": P, "NO_PROXY": "ample.com"}, "https://api.example.com/x", P),  # not a suffix match
    ({"HTTPS_PROXY": P, "NO_PROXY": "other.org, example.com:8443"}, "https://api.example.com/x", P),
    ({"HTTPS_PROXY": P, "NO_PROXY": "example.com:8443"}, "https://api.example.com:8443/x", None),
    ({"HTTP_PROXY": Q, "NO_PROXY": "10.0.0.0/8"}, "http://10.1.2.3:9090/api", None),
    ({"HTTP_PROXY": Q, "NO_PROXY": "10.0.0.0/8"}, "http://11.1.2.3:9090/api", Q),
    ({"HTTP_PROXY": Q, "NO_PROXY": "127.0.0.1"}, "http://127.0.0.1:9090/api", None),
    ({"HTTP_PROXY": Q, "NO_PROXY": "::1"}, "http://[::1]:9090/api", None),
    ({"HTTP_PROXY": Q, "no_proxy": "*"}, "http://prometheus:9090/api", None),
    ({"HTTPS_PROXY": P, "NO_PROXY": "Example.COM"}, "https://API.example.com/x", None),
]


@pytest.mark.parametrize(("env", "url", "proxy"), PROXY_TABLE)
def test_proxy_for_follows_the_environment_as_go_does(env: dict[str, str], url: str,
                                                      proxy: str | None) -> None:
    assert proxy_for(url, env) == proxy


class CountingExecutor(ThreadPoolExecutor):
    """The loop's default executor, counting what is handed to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_outbound_requests_never_hop_to_a_thread() -> None:
    """aiohttp's ``trust_env`` looked up ``~/.netrc`` in the default executor for every request: a thread
    hop (and GIL hand-over) per Prometheus query, webhook and alert — most of canaryd's CPU per step. On a
    loop of its own, so the counting executor never outlives this test."""
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": []}})

    async def five_queries() -> None:
        app = web.Application()
        app.router.add_get("/api/v1/query", answer)
        runner, port = await serve(app)
        try:
            async with outbound_session() as session:
                for _ in range(5):
                    async with session.get(f"http://127.0.0.1:{port}/api/v1/query",
                                           proxy=proxy_for(f"http://127.0.0.1:{port}")) as resp:
                        assert resp.status == 200
        finally:
            await runner.cleanup()

    executor = CountingExecutor()
    loop = asyncio.new_event_loop()
    loop.set_default_executor(executor)
    try:
        loop.run_until_complete(five_queries())
    finally:
        loop.close()
        executor.shutdown()
    assert executor.submitted == 0
