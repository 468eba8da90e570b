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

import urllib.request

import aiohttp
from yarl import URL

# Go's http.ProxyFromEnvironment: a WebSocket goes through the proxy of the scheme it upgrades from
_PROXY_SCHEME = {"wss": "https", "ws": "http"}


def outbound_session() -> aiohttp.ClientSession:
    """A session for canaryd's outbound calls (the runtime opens one for the process)."""
    return aiohttp.ClientSession(trust_env=False)


def proxy_for(url: str | URL) -> str | None:
    """The proxy canaryd's environment names for ``url`` (``HTTPS_PROXY`` for https and wss, ``HTTP_PROXY``
    for http and ws, either in lower case too), or None when there is none or ``NO_PROXY`` covers the host."""
    target = url if isinstance(url, URL) else URL(url)
    if not target.host:
        return None
    proxies = urllib.request.getproxies_environment()
    if not proxies or urllib.request.proxy_bypass(target.host):
        return None
    return proxies.get(_PROXY_SCHEME.get(target.scheme, target.scheme)) or None
