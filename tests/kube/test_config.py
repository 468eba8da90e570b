"""Kubeconfig and in-cluster loading with real files and a real TLS handshake: CA, client certificate
(file and inline data), token and token file, insecure mode; the ServiceAccount token re-read after
rotation; tokens never shown."""

from __future__ import annotations

import base64
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from canaryd.kube.client import KubeClient
from canaryd.kube.config import ConfigError, TokenSource, load_incluster, load_kubeconfig
from canaryd.kube.resources import CONFIGMAP


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
            "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"))
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}/O=system:masters",
                "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"))
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.crt"), "-CAkey",
                str(d / "ca.key"), "-CAcreateserial", "-days", "1", "-out", str(d / f"{name}.crt"),
                "-extfile", str(d / f"{name}.ext"))
    return d


@pytest.fixture
async def tls_server(pki: Path) -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """An HTTPS server that requires a client certificate signed by the test CA and records who called."""
    calls: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(x[0] for x in peer["subject"]) if peer else {}
        calls.append({"cn": subject.get("commonName", ""), "auth": request.headers.get("Authorization", "")})
        return web.json_response({"metadata": {"name": "ok"}})

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "server.crt"), str(pki / "server.key"))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    yield f"https://127.0.0.1:{runner.addresses[0][1]}", calls
    await runner.cleanup()


def kubeconfig(path: Path, server: str, cluster: dict[str, object], user: dict[str, object]) -> Path:
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "main",
        "clusters": [{"name": "c", "cluster": {"server": server, **cluster}}],
        "users": [{"name": "u", "user": user}, {"name": "other", "user": {"token": "other-token"}}],
        "contexts": [{"name": "main", "context": {"cluster": "c", "user": "u"}},
                     {"name": "alt", "context": {"cluster": "c", "user": "other"}}],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


async def fetch(cfg_path: Path, context: str | None = None) -> None:
    client = await KubeClient.from_config(str(cfg_path), context=context)
    try:
        await client.get(CONFIGMAP, "ns", "x")
    finally:
        await client.close()


async def test_client_certificate_from_inline_data(
    tmp_path: Path, pki: Path, tls_server: tuple[str, list[dict[str, str]]]
) -> None:
    url, calls = tls_server
    cfg = kubeconfig(tmp_path / "kc", url, {"certificate-authority-data": b64(pki / "ca.crt")},
                     {"client-certificate-data": b64(pki / "client.crt"),
                      "client-key-data": b64(pki / "client.key")})
    await fetch(cfg)
    assert calls == [{"cn": "client", "auth": ""}]


async def test_client_certificate_from_relative_files(
    tmp_path: Path, pki: Path, tls_server: tuple[str, list[dict[str, str]]]
) -> None:
    url, calls = tls_server
    for name in ("ca.crt", "client.crt", "client.key"):
        (tmp_path / name).write_bytes((pki / name).read_bytes())
    cfg = kubeconfig(tmp_path / "kc", url, {"certificate-authority": "ca.crt"},
                     {"client-certificate": "client.crt", "client-key": str(tmp_path / "client.key")})
    await fetch(cfg)
    assert calls[0]["cn"] == "client"


async def test_token_with_insecure_skip_verify_and_context_choice(
    tmp_path: Path, tls_server: tuple[str, list[dict[str, str]]]
) -> None:
    url, calls = tls_server
    cfg = kubeconfig(tmp_path / "kc", url, {"insecure-skip-tls-verify": True}, {"token": "secret-token"})
    await fetch(cfg)
    await fetch(cfg, context="alt")
    assert calls == [{"cn": "", "auth": "Bearer secret-token"}, {"cn": "", "auth": "Bearer other-token"}]


async def test_unknown_ca_is_refused(tmp_path: Path, tls_server: tuple[str, list[dict[str, str]]]) -> None:
    url, calls = tls_server
    cfg = kubeconfig(tmp_path / "kc", url, {}, {"token": "t"})  # system CAs only
    client = await KubeClient.from_config(str(cfg))
    client._max_attempts = 1
    try:
        with pytest.raises(Exception, match=r"(?i)certificate"):
            await client.get(CONFIGMAP, "ns", "x")
    finally:
        await client.close()
    assert calls == []


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ({"exec": {"command": "aws"}}, "not supported"),
    ],
)
def test_unsupported_or_broken(tmp_path: Path, user: dict[str, object], message: str) -> None:
    cfg = kubeconfig(tmp_path / "kc", "https://127.0.0.1:1", {}, user)
    with pytest.raises(ConfigError, match=message):
        load_kubeconfig(cfg)
    with pytest.raises(ConfigError, match="no context named"):
        load_kubeconfig(kubeconfig(tmp_path / "kc2", "https://127.0.0.1:1", {}, {}), context="nope")
    with pytest.raises(ConfigError, match="cannot read"):
        load_kubeconfig(tmp_path / "missing")


def test_token_file_rotation_and_no_token_in_repr(tmp_path: Path) -> None:
    f = tmp_path / "token"
    f.write_text("first\n")
    src = TokenSource(path=f, recheck=0)
    assert src.token() == "first"
    f.write_text("second-longer\n")
    assert src.token() == "second-longer"
    assert "second" not in repr(src)
    f.unlink()  # a transient disappearance keeps the last token
    assert src.token() == "second-longer"


def test_incluster(tmp_path: Path, pki: Path) -> None:
    (tmp_path / "ca.crt").write_bytes((pki / "ca.crt").read_bytes())
    (tmp_path / "token").write_text("sa-token")
    cfg = load_incluster(sa_dir=tmp_path, environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1",
                                                    "KUBERNETES_SERVICE_PORT": "443"})
    assert cfg.base_url == "https://10.0.0.1:443"
    assert cfg.auth_headers() == {"Authorization": "Bearer sa-token"}
    assert "sa-token" not in repr(cfg)
    v6 = load_incluster(sa_dir=tmp_path, environ={"KUBERNETES_SERVICE_HOST": "fd00::1",
                                                   "KUBERNETES_SERVICE_PORT": "6443"})
    assert v6.base_url == "https://[fd00::1]:6443"
    with pytest.raises(ConfigError, match="not in a cluster"):
        load_incluster(sa_dir=tmp_path, environ={})
