"""The HTTP session every outbound call of canaryd shares (metric providers, webhooks, alerts).

Proxies: ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` from canaryd's environment are honoured, as Flagger's
Go HTTP clients honour them: each call site passes :func:`proxy_for` of its URL. The session itself does
not trust the environment (``trust_env=False``): aiohttp would then also look up ``~/.netrc`` credentials
for every request's host (sending them to hosts a Canary author chose), through a hop to a thread per
request that cost canaryd a thread pool and a tenth of its CPU in the soak profile (docs/scaling.md).
TLS uses aiohttp's default context, built when canaryd starts from OpenSSL's default trust store, so
``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` in canaryd's environment name a custom CA bundle (as for Go). Both are
shown by tests/analysis/providers/test_outbound.py.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping

import aiohttp
from yarl import URL

# Go's http.ProxyFromEnvironment: a WebSocket goes through the proxy of the scheme it upgrades from
_PROXY_SCHEME = {"wss": "https", "ws": "http"}


def outbound_session() -> aiohttp.ClientSession:
    """A session for canaryd's outbound calls (the runtime opens one for the process)."""
    return aiohttp.ClientSession(trust_env=False)


def proxy_for(url: str | URL, environ: Mapping[str, str] = os.environ) -> str | None:
    """The proxy canaryd's environment names for ``url``, as Go's ``http.ProxyFromEnvironment`` reads it:
    ``HTTPS_PROXY`` for https and wss, ``HTTP_PROXY`` for http and ws (upper case first, then lower case),
    none when ``NO_PROXY`` covers the host. A few dictionary lookups: it runs for every outbound request
    (``urllib`` scans the whole environment: 42 µs against 3 µs with 35 variables set)."""
    target = url if isinstance(url, URL) else URL(url)
    if not target.host:
        return None
    var = "HTTPS_PROXY" if _PROXY_SCHEME.get(target.scheme, target.scheme) == "https" else "HTTP_PROXY"
    proxy = environ.get(var) or environ.get(var.lower())
    if not proxy:
        return None
    no_proxy = environ.get("NO_PROXY") or environ.get("no_proxy") or ""
    return None if no_proxy and bypassed(target.host, target.port, no_proxy) else proxy


def bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    """Go's ``NO_PROXY`` rules: ``*`` is every host; an IP address or CIDR prefix matches addresses in it;
    a domain matches itself and its subdomains, with a leading dot its subdomains only; an entry with a
    ``:port`` matches that port only."""
    host = host.lower().rstrip(".")
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        try:  # an address or a CIDR prefix (no port)
            network = ipaddress.ip_network(entry.strip("[]"), strict=False)
        except ValueError:
            network = None
        if network is not None:
            if address is not None and address in network:
                return True
            continue
        name, _, entry_port = entry.rpartition(":") if _has_port(entry) else (entry, "", "")
        if entry_port and str(port) != entry_port:
            continue
        if name.startswith("."):
            if host.endswith(name):
                return True
        elif host == name or host.endswith("." + name):
            return True
    return False


def _has_port(entry: str) -> bool:
    head, sep, tail = entry.rpartition(":")
    return bool(sep) and tail.isdigit() and "]" not in tail and head.count(":") == 0
