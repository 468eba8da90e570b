"""Kubeconfig and in-cluster loading (kubernetes-asyncio's loader) with real files and a real TLS
handshake: CA, client certificate (file and inline data), token and token file, insecure mode, contexts,
``KUBECONFIG=a:b`` merged, an ``exec`` credential plugin renewed before its expiry and after a 401, oidc;
the ServiceAccount token re-read; config errors as one line; tokens never shown."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from canaryd.kube.client import KubeClient
from canaryd.kube.config import (
    ConfigError,
    Credentials,
    TokenSource,
    load,
    load_incluster,
    load_kubeconfig,
)
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


@pytest.fixture
async def http_server() -> AsyncIterator[tuple[str, list[str], set[str]]]:
    """A plain-HTTP API server stand-in: records each Authorization header, answers 401 to those in the
    returned set (a revoked token)."""
    seen: list[str] = []
    revoked: set[str] = set()

    async def handle(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        seen.append(auth)
        if auth in revoked or not auth:
            return web.json_response({"kind": "Status", "code": 401, "reason": "Unauthorized",
                                      "message": "Unauthorized"}, status=401)
        return web.json_response({"metadata": {"name": "ok"}})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen, revoked
    await runner.cleanup()


async def fetch(cfg_path: Path | str, context: str | None = None) -> None:
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
    cwd = os.getcwd()
    os.chdir("/")  # relative to the kubeconfig's directory, not the process's
    try:
        await fetch(cfg)
    finally:
        os.chdir(cwd)
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


async def test_kubeconfig_list_is_merged_as_kubectl_does(
    tmp_path: Path, pki: Path, tls_server: tuple[str, list[dict[str, str]]]
) -> None:
    """KUBECONFIG=a:b: the first file naming an entry wins, current-context comes from the first file
    that sets one, a context of b uses a's cluster, relative paths resolve against their own file, a
    missing file in the list is skipped."""
    url, calls = tls_server
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "ca.crt").write_bytes((pki / "ca.crt").read_bytes())
    (tmp_path / "b" / "token").write_text("b-file-token\n")
    a = {"apiVersion": "v1", "kind": "Config", "current-context": "from-a",
         "clusters": [{"name": "c", "cluster": {"server": url, "certificate-authority": "ca.crt"}}],
         "users": [{"name": "u", "user": {"token": "a-token"}}],
         "contexts": [{"name": "from-a", "context": {"cluster": "c", "user": "u"}}]}
    b = {"apiVersion": "v1", "kind": "Config", "current-context": "from-b",
         "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],  # shadowed by a's
         "users": [{"name": "u", "user": {"token": "shadowed"}},
                   {"name": "file-user", "user": {"tokenFile": "token"}}],
         "contexts": [{"name": "from-b", "context": {"cluster": "c", "user": "file-user"}}]}
    (tmp_path / "a" / "config").write_text(yaml.safe_dump(a))
    (tmp_path / "b" / "config").write_text(yaml.safe_dump(b))
    paths = f"{tmp_path / 'a' / 'config'}:{tmp_path / 'missing'}:{tmp_path / 'b' / 'config'}"
    await fetch(paths)
    await fetch(paths, context="from-b")
    assert [c["auth"] for c in calls] == ["Bearer a-token", "Bearer b-file-token"]
    with pytest.raises(ConfigError, match=r"no context named 'nope' \(contexts: from-a, from-b\)"):
        await load_kubeconfig(paths, context="nope")


def exec_plugin(tmp_path: Path, lifetime: float) -> tuple[Path, Path]:
    """A credential plugin printing ExecCredential tok-<n> (n = its n-th run, counted in a file) that
    expires ``lifetime`` seconds ahead; returns (plugin, counter)."""
    counter = tmp_path / "runs"
    counter.write_text("0")
    plugin = tmp_path / "plugin.py"
    plugin.write_text(f"""#!{sys.executable}
import datetime, json, os, pathlib
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
c = pathlib.Path({str(counter)!r}); n = int(c.read_text()) + 1; c.write_text(str(n))
exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds={lifetime})
stamp = exp.strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential",
                  "status": {{"token": f"tok-{{n}}", "expirationTimestamp": stamp}}}}))
""")
    plugin.chmod(0o755)
    return plugin, counter


def exec_user(plugin: Path) -> dict[str, object]:
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                     "interactiveMode": "Never"}}


async def test_exec_plugin_token_renewed_before_expiry(
    tmp_path: Path, http_server: tuple[str, list[str], set[str]]
) -> None:
    url, seen, _ = http_server
    plugin, counter = exec_plugin(tmp_path, lifetime=2)
    client = await KubeClient.from_config(str(kubeconfig(tmp_path / "kc", url, {}, exec_user(plugin))))
    try:
        await client.get(CONFIGMAP, "ns", "x")
        await client.get(CONFIGMAP, "ns", "x")  # still valid: no second run
        assert seen == ["Bearer tok-1", "Bearer tok-1"]
        deadline = time.monotonic() + 10
        while seen[-1] == "Bearer tok-1" and time.monotonic() < deadline:
            await client.get(CONFIGMAP, "ns", "x")
        assert seen[-1] == "Bearer tok-2"  # asked again before tok-1 expired (1.6 s of its 2 s)
    finally:
        await client.close()
    assert counter.read_text() == "2"


async def test_exec_plugin_asked_again_after_401(
    tmp_path: Path, http_server: tuple[str, list[str], set[str]]
) -> None:
    """A token revoked early (its bound Secret deleted) gets a 401: the plugin is run again at once and the
    request sent again; a second 401 with fresh credentials is the caller's error."""
    url, seen, revoked = http_server
    plugin, counter = exec_plugin(tmp_path, lifetime=3600)
    client = await KubeClient.from_config(str(kubeconfig(tmp_path / "kc", url, {}, exec_user(plugin))))
    try:
        await client.get(CONFIGMAP, "ns", "x")
        revoked.add("Bearer tok-1")
        assert (await client.get(CONFIGMAP, "ns", "x"))["metadata"]["name"] == "ok"
        assert seen == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]
        revoked.update({"Bearer tok-2", "Bearer tok-3"})
        with pytest.raises(Exception, match="401"):
            await client.get(CONFIGMAP, "ns", "x")
        assert seen[3:] == ["Bearer tok-2", "Bearer tok-3"]
    finally:
        await client.close()
    assert counter.read_text() == "3"


def jwt(claims: dict[str, object]) -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


async def test_oidc_auth_provider_id_token(
    tmp_path: Path, http_server: tuple[str, list[str], set[str]]
) -> None:
    url, seen, _ = http_server
    token = jwt({"sub": "me", "exp": int(time.time()) + 3600})
    user = {"auth-provider": {"name": "oidc", "config": {
        "client-id": "canaryd", "id-token": token, "idp-issuer-url": "https://127.0.0.1:1"}}}
    await fetch(kubeconfig(tmp_path / "kc", url, {}, user))
    assert seen == [f"Bearer {token}"]


@pytest.mark.parametrize(
    ("doc", "context", "message"),
    [
        (None, None, r"cannot read kubeconfig .*missing: no such file"),
        ("clusters: [", None, r"cannot read kubeconfig .*: while parsing"),
        ("- a list", None, r"is not a mapping"),
        ({"contexts": [], "clusters": [], "users": []}, None, r"no current-context; give --context"),
        ({"current-context": "x", "contexts": [{"name": "x", "context": {"cluster": "gone"}}],
          "clusters": [], "users": []}, None, r"no cluster named 'gone' \(clusters: none\)"),
        ({"current-context": "x", "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
          "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
          "users": [{"name": "u", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                                     "command": "/nonexistent/plugin"}}}]},
         None, r"kubeconfig user exec: .*nonexistent"),
        ({"current-context": "x", "contexts": [{"name": "x", "context": {"cluster": "c"}}],
          "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1",
                                                 "certificate-authority": "nope.crt"}}], "users": []},
         None, r"(?i)does not exist|no such file"),
    ],
)
async def test_config_errors(tmp_path: Path, doc: object, context: str | None, message: str) -> None:
    path = tmp_path / "missing"
    if doc is not None:
        path = tmp_path / "kc"
        path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=message) as err:
        await load_kubeconfig(path, context=context)
    assert "\n" not in str(err.value)


def test_config_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """`canaryd run` with a broken kubeconfig: one line on stderr, exit code 2, no traceback."""
    broken = kubeconfig(tmp_path / "kc", "https://127.0.0.1:1", {}, {
        "exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "/nonexistent/plugin"}})
    for args in (["--kubeconfig", str(broken)], ["--kubeconfig", str(tmp_path / "none")],
                 ["--kubeconfig", str(broken), "--context", "nope"]):
        proc = subprocess.run([sys.executable, "-m", "canaryd", "run", *args, "--port", "0"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("canaryd: ") and proc.stderr.count("\n") == 1, proc.stderr


@pytest.mark.parametrize(
    ("expires", "recheck", "renewable", "now", "due"),
    [
        (100.0, None, True, 50.0, False),  # a 100 s credential asked at 0: renewed 20 s before it ends
        (100.0, None, True, 79.0, False),
        (100.0, None, True, 80.0, True),
        (1000.0, None, True, 939.0, False),  # at most 60 s before
        (1000.0, None, True, 940.0, True),
        (None, 60.0, True, 59.0, False),  # no expiry: every recheck seconds
        (None, 60.0, True, 60.0, True),
        (None, None, True, 1e9, False),  # exec without expiry: only after a 401
        (None, 60.0, False, 1e9, False),  # a fixed token: never
    ],
)
def test_credentials_due(expires: float | None, recheck: float | None, renewable: bool, now: float,
                         due: bool) -> None:
    clock = [0.0]

    async def issue(force: bool) -> tuple[str, float | None]:
        raise AssertionError("not asked here")

    creds = Credentials(issue, "Bearer x", expires, renewable=renewable, recheck=recheck,
                        now=lambda: clock[0])
    clock[0] = now
    assert creds._due() is due
    assert "Bearer x" not in repr(creds)


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


async def test_incluster(tmp_path: Path, pki: Path) -> None:
    (tmp_path / "ca.crt").write_bytes((pki / "ca.crt").read_bytes())
    (tmp_path / "token").write_text("sa-token")
    cfg = await load_incluster(sa_dir=tmp_path, environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1",
                                                          "KUBERNETES_SERVICE_PORT": "443"})
    assert cfg.base_url == "https://10.0.0.1:443"
    assert (await cfg.request_auth())[0] == {"Authorization": "Bearer sa-token"}
    assert "sa-token" not in repr(cfg)
    (tmp_path / "token").write_text("rotated")  # re-read at once after a 401
    assert await cfg.renew_after_401(0)
    assert (await cfg.request_auth())[0] == {"Authorization": "Bearer rotated"}
    v6 = await load_incluster(sa_dir=tmp_path, environ={"KUBERNETES_SERVICE_HOST": "fd00::1",
                                                         "KUBERNETES_SERVICE_PORT": "6443"})
    assert v6.base_url == "https://[fd00::1]:6443"
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "1"}
    master = await load_incluster(sa_dir=tmp_path, master="https://api.example:6443/", environ=env)
    assert master.base_url == "https://api.example:6443"
    with pytest.raises(ConfigError, match="not in a cluster"):
        await load_incluster(sa_dir=tmp_path, environ={})
    with pytest.raises(ConfigError, match="--context needs a kubeconfig"):
        await load(None, context="x")
