"""Where the API server is and how to authenticate, read by kubernetes-asyncio's config loader (every
kubeconfig kubectl takes: ``KUBECONFIG=a:b`` merged, contexts, client certificates, tokens and token
files, ``exec`` credential plugins with their expiry, ``auth-provider`` oidc/gcp, basic auth; or the
Pod's ServiceAccount). Produces a base URL, an SSL context and a :class:`Credentials` the client asks
before each request and after a 401; the HTTP itself stays ``KubeClient``'s (raw aiohttp, watch
streams). Tokens are never logged or put into exception texts."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.config.config_exception import ConfigException
from kubernetes_asyncio.config.incluster_config import InClusterConfigLoader
from kubernetes_asyncio.config.kube_config import ENV_KUBECONFIG_PATH_SEPARATOR, KubeConfigLoader

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# sources that do not say when they expire (token files, oidc, gcp) are asked again this often
RECHECK = 60.0
MAX_MARGIN = 60.0  # an expiring credential is renewed this long (at most a fifth of its life) before


class ConfigError(Exception):
    """The kubeconfig or in-cluster environment cannot be used (one line, no secrets)."""


class CredentialsError(Exception):
    """New credentials could not be obtained (a failing exec plugin, an unreadable token file)."""


class TokenSource:
    """A bearer token, fixed or read from a file that is re-read when it changes. Kept for callers that
    build a ``ClusterConfig`` by hand (tests, benchmarks); loaded configs use :class:`Credentials`."""

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


# (force) -> (Authorization header value or "", expiry as a unix time or None)
Issue = Callable[[bool], Awaitable[tuple[str, float | None]]]


class Credentials:
    """The Authorization header from a loader, asked again when due — before the credential's expiry
    (exec plugins say it), every ``recheck`` seconds for sources that do not say — and after a 401.
    Concurrent requests share one renewal; a 401 seen with an older credential renews nothing."""

    def __init__(self, issue: Issue, authorization: str, expires: float | None, *,
                 renewable: bool, recheck: float | None = None,
                 now: Callable[[], float] = time.time) -> None:
        self._issue = issue
        self._value = authorization
        self._expires = expires
        self._renewable = renewable
        self._recheck = recheck
        self._now = now
        self._asked = now()
        self._lock = asyncio.Lock()
        self.generation = 0  # counts renewals
        self.renewals = 0

    def _due(self) -> bool:
        if not self._renewable:
            return False
        now = self._now()
        if self._expires is not None:
            margin = min(MAX_MARGIN, max(0.0, self._expires - self._asked) / 5)
            return now >= self._expires - margin
        return self._recheck is not None and now - self._asked >= self._recheck

    async def authorization(self) -> tuple[str, int]:
        """The header value for the next request ("" for none) and its generation (for :meth:`renew`)."""
        if self._due():
            await self._renew(self.generation, force=False)
        return self._value, self.generation

    async def renew(self, generation: int) -> bool:
        """After a 401 answered to a request sent with ``generation``: get new credentials (unless another
        request already did). False when this source cannot give others (a fixed token)."""
        if not self._renewable:
            return False
        await self._renew(generation, force=True)
        return True

    async def _renew(self, generation: int, *, force: bool) -> None:
        async with self._lock:
            if generation != self.generation:
                return
            try:
                value, expires = await self._issue(force)
            except (ConfigError, ConfigException, OSError, ValueError, KeyError) as err:
                self._asked = self._now()  # retried when next due, not on every request
                raise CredentialsError(f"cannot renew API credentials: {_one_line(err)}") from None
            self._value, self._expires, self._asked = value, expires, self._now()
            self.generation += 1
            self.renewals += 1

    def __repr__(self) -> str:  # never show the token
        return f"Credentials(renewable={self._renewable}, expires={self._expires})"


@dataclass
class ClusterConfig:
    """Everything ``KubeClient`` needs to reach one API server."""

    base_url: str
    ssl_context: ssl.SSLContext | None  # None for plain http (only ever loopback test servers)
    token: TokenSource | None = None
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    credentials: Credentials | None = None  # from a loader: wins over token/basic_auth
    server_hostname: str | None = None  # kubeconfig tls-server-name: the name the certificate is checked for
    proxy: str | None = None  # kubeconfig proxy-url (http/https proxies)

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header of a fixed ``token``/``basic_auth`` (empty with client certificates)."""
        if self.token is not None:
            tok = self.token.token()
            if tok:
                return {"Authorization": f"Bearer {tok}"}
        if self.basic_auth is not None:
            raw = base64.b64encode(f"{self.basic_auth[0]}:{self.basic_auth[1]}".encode()).decode()
            return {"Authorization": f"Basic {raw}"}
        return {}

    async def request_auth(self) -> tuple[dict[str, str], int]:
        """Headers for the next request and the credentials' generation (see :meth:`renew_after_401`)."""
        if self.credentials is None:
            return self.auth_headers(), 0
        value, generation = await self.credentials.authorization()
        return ({"Authorization": value} if value else {}), generation

    async def renew_after_401(self, generation: int) -> bool:
        """True when new credentials were obtained and the request is worth sending again."""
        return self.credentials is not None and await self.credentials.renew(generation)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:400]


def _read_merged(paths: str) -> tuple[dict[str, Any], list[str]]:
    """The kubeconfig files of ``paths`` (``a:b``) as kubectl merges them: the first file naming a
    cluster/user/context wins, the last current-context is kept. A missing file in a list is skipped; one
    file alone, or none of the list, existing is an error."""
    files = [os.path.expanduser(p) for p in paths.split(ENV_KUBECONFIG_PATH_SEPARATOR) if p]
    present = [p for p in files if os.path.exists(p)]
    if not present:
        raise ConfigError(f"cannot read kubeconfig {paths}: no such file")
    merged: dict[str, Any] = {"clusters": [], "users": [], "contexts": []}
    for path in present:
        try:
            doc = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"cannot read kubeconfig {path}: {_one_line(err)}") from None
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ConfigError(f"kubeconfig {path} is not a mapping")
        for item in ("clusters", "users", "contexts"):
            entries = doc.get(item) or []
            if not isinstance(entries, list):
                raise ConfigError(f"kubeconfig {path}: {item} is not a list")
            for entry in entries:
                if not isinstance(entry, dict) or not entry.get("name"):
                    raise ConfigError(f"kubeconfig {path}: an entry of {item} has no name")
                if all(e["name"] != entry["name"] for e in merged[item]):
                    merged[item].append({**entry, "_dir": os.path.dirname(os.path.abspath(path))})
        if doc.get("current-context") and "current-context" not in merged:
            merged["current-context"] = doc["current-context"]
    return merged, present


def _entry(doc: Mapping[str, Any], item: str, name: str, what: str) -> dict[str, Any]:
    for entry in doc[item]:
        if entry["name"] == name:
            body = entry.get(what)
            return body if isinstance(body, dict) else {}
    names = ", ".join(str(e["name"]) for e in doc[item]) or "none"
    raise ConfigError(f"kubeconfig has no {what} named {name!r} ({item}: {names})")


def _absolute(section: dict[str, Any], base: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """Paths in a kubeconfig are relative to the file that holds them (merged files differ)."""
    out = dict(section)
    for key in keys:
        value = out.get(key)
        if isinstance(value, str) and value and not os.path.isabs(os.path.expanduser(value)):
            out[key] = os.path.join(base, value)
        elif isinstance(value, str):
            out[key] = os.path.expanduser(value)
    return out


def _select(merged: dict[str, Any], context: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """One context's cluster and user, as a single-context kubeconfig for the loader, and the user."""
    name = context or merged.get("current-context")
    if not name:
        raise ConfigError("kubeconfig has no current-context; give --context")
    ctx = _entry(merged, "contexts", str(name), "context")
    cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
    cluster_entry = next((e for e in merged["clusters"] if e["name"] == cluster_name), None)
    if cluster_entry is None:
        _entry(merged, "clusters", str(cluster_name), "cluster")  # raises, naming the clusters
    assert cluster_entry is not None
    cluster = _absolute(cluster_entry.get("cluster") or {}, cluster_entry["_dir"], ("certificate-authority",))
    if not cluster.get("server"):
        raise ConfigError(f"kubeconfig cluster {cluster_name!r} has no server")
    user: dict[str, Any] = {}
    if user_name:
        user_entry = next((e for e in merged["users"] if e["name"] == user_name), None)
        if user_entry is None:
            _entry(merged, "users", str(user_name), "user")
        assert user_entry is not None
        user = _absolute(user_entry.get("user") or {}, user_entry["_dir"],
                         ("client-certificate", "client-key", "tokenFile"))
    single = {
        "current-context": "selected",
        "contexts": [{"name": "selected", "context": {"cluster": "c", "user": "u"}}],
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
    }
    return single, user


def _ssl_context(conf: Any) -> ssl.SSLContext | None:
    if not str(conf.host).startswith("https://"):
        return None
    try:
        ctx = ssl.create_default_context(cafile=conf.ssl_ca_cert) if conf.ssl_ca_cert else \
            ssl.create_default_context()
        if not conf.verify_ssl:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if conf.cert_file and conf.key_file:
            ctx.load_cert_chain(conf.cert_file, conf.key_file)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"kubeconfig TLS material unusable: {_one_line(err)}") from None
    return ctx


def _bearer(conf: Any) -> str:
    """The loader's Authorization value; whitespace around a token file's content is not part of it."""
    return " ".join(str(conf.api_key.get("BearerToken") or "").split())


def _expiry(loader: Any) -> float | None:
    expiry = getattr(loader, "exec_plugin_expiry", None)
    return expiry.timestamp() if expiry is not None else None


async def load_kubeconfig(paths: str | os.PathLike[str], *, context: str | None = None,
                          master: str | None = None) -> ClusterConfig:
    """From kubeconfig files (``a:b`` merged), the given or current context; ``master`` replaces the
    server. Raises ``ConfigError``."""
    merged, _ = _read_merged(os.fspath(paths))
    single, user = _select(merged, context)
    loader = KubeConfigLoader(config_dict=single, config_base_path="")
    conf = Configuration()
    try:
        await loader.load_and_set(conf)
    except (ConfigException, OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"kubeconfig user {_user_kind(user)}: {_one_line(err)}") from None
    if master:
        conf.host = master.rstrip("/")
    kind = _user_kind(user)
    token = _bearer(conf)

    async def issue(force: bool) -> tuple[str, float | None]:
        try:
            if kind == "exec":
                if force:  # the loader keeps a plugin's answer until 5 min before its expiry
                    with contextlib.suppress(AttributeError):
                        del loader.exec_plugin_expiry
                await loader.load_from_exec_plugin()
                return str(loader.token).strip(), _expiry(loader)
            fresh = Configuration()
            await loader.load_and_set(fresh)
            return _bearer(fresh), None
        except (ConfigException, FileNotFoundError) as err:
            raise ConfigError(_one_line(err)) from None

    renewable = kind in ("exec", "auth-provider", "tokenFile")
    credentials = Credentials(issue, token, _expiry(loader) if kind == "exec" else None,
                              renewable=renewable, recheck=None if kind == "exec" else RECHECK)
    return ClusterConfig(base_url=str(conf.host), ssl_context=_ssl_context(conf), credentials=credentials,
                         server_hostname=getattr(conf, "tls_server_name", None) or None,
                         proxy=getattr(conf, "proxy", None) or None)


def _user_kind(user: Mapping[str, Any]) -> str:
    for kind in ("exec", "auth-provider"):
        if kind in user:
            return kind
    if user.get("token"):
        return "token"
    if user.get("tokenFile"):
        return "tokenFile"
    return "basic" if user.get("username") else "certificate"


async def load_incluster(*, sa_dir: Path = SA_DIR, environ: Mapping[str, str] | None = None,
                         master: str | None = None) -> ClusterConfig:
    """The Pod's ServiceAccount: host/port from the environment, CA and a rotating token from files
    (re-read every minute, and after a 401)."""
    env = dict(os.environ if environ is None else environ)
    if not env.get("KUBERNETES_SERVICE_HOST") or not env.get("KUBERNETES_SERVICE_PORT"):
        raise ConfigError("not in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set (give --kubeconfig)")

    def load() -> Any:
        conf = Configuration()
        try:
            InClusterConfigLoader(token_filename=str(sa_dir / "token"), cert_filename=str(sa_dir / "ca.crt"),
                                  environ=env).load_and_set(conf)
        except (ConfigException, OSError) as err:
            raise ConfigError(f"in-cluster config under {sa_dir}: {_one_line(err)}") from None
        return conf

    conf = load()
    if master:
        conf.host = master.rstrip("/")
    current = conf

    async def issue(force: bool) -> tuple[str, float | None]:
        nonlocal current
        if force:
            current = load()
        else:
            current.refresh_api_key_hook(current)  # the loader re-reads the file once a minute
        return _bearer(current), None

    token = _bearer(conf)
    return ClusterConfig(base_url=str(conf.host), ssl_context=_ssl_context(conf),
                         credentials=Credentials(issue, token, None, renewable=True, recheck=1.0))


async def load(kubeconfig: str | os.PathLike[str] | None, *, context: str | None = None,
               master: str | None = None) -> ClusterConfig:
    """A kubeconfig when given, else the in-cluster ServiceAccount."""
    if kubeconfig:
        return await load_kubeconfig(kubeconfig, context=context, master=master)
    if context:
        raise ConfigError("--context needs a kubeconfig (--kubeconfig or KUBECONFIG)")
    return await load_incluster(master=master)
