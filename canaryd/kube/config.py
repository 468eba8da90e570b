"""Where the API server is and how to authenticate: from a kubeconfig file or from the Pod's
ServiceAccount. Produces a base URL, an SSL context and a token source; the HTTP itself is done by
``KubeClient`` with a raw aiohttp session. Tokens are never logged or put into exception texts."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ConfigError(Exception):
    """The kubeconfig or in-cluster environment cannot be used."""


class TokenSource:
    """A bearer token, fixed or read from a file that is re-read when it changes (projected
    ServiceAccount tokens rotate about hourly; the kubelet swaps the file atomically)."""

    def __init__(self, *, token: str | None = None, path: Path | None = None, recheck: float = 1.0) -> None:
        self._token = token
        self._path = path
        self._recheck = recheck
        self._checked = 0.0
        self._stamp: tuple[int, int, int] | None = None
        if path is not None:
            self._reload()

    def _reload(self) -> None:
        assert self._path is not None
        try:
            st = self._path.stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                self._token = self._path.read_text().strip()
                self._stamp = stamp
        except OSError as exc:
            if self._token is None:
                raise ConfigError(f"cannot read token file {self._path}: {exc.strerror}") from None

    def token(self) -> str | None:
        """The current token; a file source is re-checked at most every ``recheck`` seconds."""
        if self._path is not None:
            now = time.monotonic()
            if now - self._checked >= self._recheck:
                self._checked = now
                self._reload()
        return self._token

    def __repr__(self) -> str:  # never show the token
        return f"TokenSource(path={self._path!s})" if self._path else "TokenSource(<static>)"


@dataclass
class ClusterConfig:
    """Everything ``KubeClient`` needs to reach one API server."""

    base_url: str
    ssl_context: ssl.SSLContext | None  # None for plain http (only ever loopback test servers)
    token: TokenSource | None = None
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header for the next request (empty with client-certificate auth)."""
        if self.token is not None:
            tok = self.token.token()
            if tok:
                return {"Authorization": f"Bearer {tok}"}
        if self.basic_auth is not None:
            raw = base64.b64encode(f"{self.basic_auth[0]}:{self.basic_auth[1]}".encode()).decode()
            return {"Authorization": f"Basic {raw}"}
        return {}


def _named(entries: Any, name: str, what: str) -> dict[str, Any]:
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            body = entry.get(what)
            return body if isinstance(body, dict) else {}
    raise ConfigError(f"kubeconfig has no {what} named {name!r}")


def _pem(section: Mapping[str, Any], key: str, base: Path) -> bytes | None:
    """``key-data`` (base64) or ``key`` (a path, relative to the kubeconfig's directory)."""
    data = section.get(f"{key}-data")
    if data:
        return base64.b64decode(data)
    path = section.get(key)
    if path:
        p = Path(os.path.expanduser(str(path)))
        return (p if p.is_absolute() else base / p).read_bytes()
    return None


def _load_client_cert(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """``load_cert_chain`` wants files: write both to a private temp dir, load, delete at once."""
    with tempfile.TemporaryDirectory(prefix="canaryd-cert-") as tmp:
        cpath, kpath = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
        for path, data in ((cpath, cert), (kpath, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        ctx.load_cert_chain(str(cpath), str(kpath))


def _ssl_context(ca: bytes | None, insecure: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif ca is not None:
        ctx = ssl.create_default_context(cadata=ca.decode("ascii", "replace"))
    return ctx


def load_kubeconfig(path: str | os.PathLike[str], *, context: str | None = None) -> ClusterConfig:
    """Read one kubeconfig file: server, CA (or insecure-skip-tls-verify), client certificate/key,
    token or tokenFile, basic auth. ``exec`` and ``auth-provider`` plugins are not supported."""
    file = Path(path)
    try:
        doc = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read kubeconfig {file}: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"kubeconfig {file} is not a mapping")
    ctx_name = context or doc.get("current-context")
    if not ctx_name:
        raise ConfigError(f"kubeconfig {file} has no current-context and none was given")
    ctx = _named(doc.get("contexts"), str(ctx_name), "context")
    cluster = _named(doc.get("clusters"), str(ctx.get("cluster")), "cluster")
    user = _named(doc.get("users"), str(ctx.get("user")), "user") if ctx.get("user") else {}
    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise ConfigError(f"cluster {ctx.get('cluster')!r} has no server")
    if "exec" in user or "auth-provider" in user:
        raise ConfigError("kubeconfig exec/auth-provider credential plugins are not supported")
    base = file.parent
    sslctx: ssl.SSLContext | None = None
    if server.startswith("https://"):
        sslctx = _ssl_context(_pem(cluster, "certificate-authority", base),
                              bool(cluster.get("insecure-skip-tls-verify")))
        cert, key = _pem(user, "client-certificate", base), _pem(user, "client-key", base)
        if cert and key:
            _load_client_cert(sslctx, cert, key)
    token: TokenSource | None = None
    if user.get("token"):
        token = TokenSource(token=str(user["token"]))
    elif user.get("tokenFile"):
        token = TokenSource(path=Path(str(user["tokenFile"])))
    basic = (str(user["username"]), str(user["password"])) if user.get("username") else None
    return ClusterConfig(base_url=server, ssl_context=sslctx, token=token, basic_auth=basic)


def load_incluster(*, sa_dir: Path = SA_DIR, environ: Mapping[str, str] | None = None) -> ClusterConfig:
    """The Pod's ServiceAccount: host/port from the environment, CA and a rotating token from files."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError("not in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set (give --kubeconfig)")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    ca_path = sa_dir / "ca.crt"
    try:
        ca = ca_path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {ca_path}: {exc.strerror}") from None
    return ClusterConfig(
        base_url=f"https://{host}:{port}",
        ssl_context=_ssl_context(ca, False),
        token=TokenSource(path=sa_dir / "token"),
    )
