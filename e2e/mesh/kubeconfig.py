"""Just enough kubeconfig for the simulator's own API client: server URL, TLS context, bearer token.

The simulator does not use canaryd's client on purpose: the bed must not depend on the code it tests."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class ApiAccess:
    server: str
    ssl: ssl.SSLContext | bool
    headers: dict[str, str]


def _named(items: list[dict[str, Any]], name: str, what: str) -> dict[str, Any]:
    for item in items or []:
        if item.get("name") == name:
            return dict(item.get(what) or {})
    raise ValueError(f"kubeconfig: no {what} named {name!r}")


def _pem(entry: dict[str, Any], key: str, base: Path) -> bytes | None:
    """The PEM of ``key`` (a file path, relative to the kubeconfig) or ``key-data`` (base64)."""
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        return (base / str(entry[key])).read_bytes()
    return None


def load(path: str) -> ApiAccess:
    """Client certificate, token (or tokenFile) and CA of the current context; ``insecure-skip-tls-verify``
    honoured. Exec and auth-provider plugins are not supported (the bed never writes them)."""
    file = Path(path)
    config = yaml.safe_load(file.read_text()) or {}
    base = file.parent
    context = _named(config.get("contexts") or [], str(config.get("current-context", "")), "context")
    cluster = _named(config.get("clusters") or [], str(context.get("cluster", "")), "cluster")
    user = _named(config.get("users") or [], str(context.get("user", "")), "user")
    server = str(cluster["server"]).rstrip("/")
    headers: dict[str, str] = {}
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = (base / str(user["tokenFile"])).read_text().strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if not server.startswith("https"):
        return ApiAccess(server, False, headers)
    ctx = ssl.create_default_context()
    if cluster.get("insecure-skip-tls-verify"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ca = _pem(cluster, "certificate-authority", base)
        if ca:
            ctx.load_verify_locations(cadata=ca.decode())
    cert = _pem(user, "client-certificate", base)
    key = _pem(user, "client-key", base)
    if cert and key:
        # ssl can only load a key pair from files: write them privately, load, remove
        with tempfile.TemporaryDirectory(prefix="bed-mesh-") as tmp:
            cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            for target, data in ((cert_file, cert), (key_file, key)):
                fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
            ctx.load_cert_chain(str(cert_file), str(key_file))
    return ApiAccess(server, ctx, headers)
