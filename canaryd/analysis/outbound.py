"""The HTTP session every outbound call of canaryd shares (metric providers, webhooks, alerts).

``trust_env``: ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` from canaryd's environment are honoured,
as Flagger's Go HTTP clients honour them. TLS uses aiohttp's default context, built when canaryd starts
from OpenSSL's default trust store, so ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` in canaryd's environment
name a custom CA bundle (as for Go). Both are shown by tests/analysis/providers/test_outbound.py.
"""

from __future__ import annotations

import aiohttp


def outbound_session() -> aiohttp.ClientSession:
    """A session for canaryd's outbound calls (the runtime opens one for the process)."""
    return aiohttp.ClientSession(trust_env=True)
