"""MetricTemplate ``provider.insecureSkipVerify`` against a loopback HTTPS server whose certificate is
self-signed (made with ``openssl`` here): off, the check fails naming the certificate error (it used to
say "unreachable: operation not permitted", errno 1's text); on, it passes."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from .promserver import free_port
from .test_templates import World, run, template, tref

ANSWER = {"status": "success",
          "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "1"]}]}}


def self_signed(where: Path) -> ssl.SSLContext:
    key, cert = where / "key.pem", where / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


@pytest.fixture
async def https_prometheus(tmp_path: Path) -> AsyncIterator[str]:
    async def query(_: web.Request) -> web.Response:
        return web.json_response(ANSWER)

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=self_signed(tmp_path))
    await site.start()
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _world(address: str, **provider: Any) -> World:
    world = World("http://unused.invalid")
    world.templates[("test", "tls")] = template("test", "tls", "vector(1)",
                                                 {"type": "prometheus", "address": address, **provider})
    return world


async def test_self_signed_server_fails_naming_the_certificate_error(
        https_prometheus: str, session: aiohttp.ClientSession) -> None:
    (result,) = await run(_world(https_prometheus), session, tref("tls", hi=5))
    assert result.verdict == "error"
    assert f"Prometheus {https_prometheus} certificate error: certificate verify failed:" in result.message
    assert "self-signed certificate" in result.message or "self signed certificate" in result.message
    assert "insecureSkipVerify" in result.message
    assert "operation not permitted" not in result.message


async def test_insecure_skip_verify_accepts_the_self_signed_server(
        https_prometheus: str, session: aiohttp.ClientSession) -> None:
    (result,) = await run(_world(https_prometheus, insecureSkipVerify=True), session, tref("tls", hi=5))
    assert (result.verdict, result.value) == ("pass", 1.0), result.message
