"""Google access tokens for Cloud Monitoring: a service-account key's JWT (RS256) exchanged at its
``token_uri`` (OAuth 2.0 JWT bearer grant), or Google's default credentials of canaryd's own
environment (``GOOGLE_APPLICATION_CREDENTIALS``, then the GCE metadata server). Each token is kept in
the process's :class:`~canaryd.analysis.providers.tokens.TokenCache` until shortly before its
``expires_in`` runs out (docs/providers.md)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
from yarl import URL

from canaryd.analysis.providers import rs256
from canaryd.analysis.providers.protocol import ProviderError
from canaryd.analysis.providers.request import request
from canaryd.analysis.providers.tokens import Expiring, TokenCache, digest

SCOPE = "https://www.googleapis.com/auth/monitoring.read"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
METADATA = "http://metadata.google.internal"
LIMIT = 64 * 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def parse_key(text: str) -> dict[str, str]:
    """The fields of a service-account key file this needs, or :class:`ProviderError`."""
    try:
        doc: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ProviderError("stackdriver: serviceAccountKey is not a JSON key file") from None
    fields = ("client_email", "private_key", "token_uri")
    if not isinstance(doc, dict) or doc.get("type") != "service_account" or \
            not all(isinstance(doc.get(f), str) for f in fields):
        raise ProviderError("stackdriver: serviceAccountKey is not a service_account key with "
                            "client_email, private_key and token_uri")
    return {k: str(v) for k, v in doc.items() if isinstance(v, str)}


def assertion(key: Mapping[str, str], now: float) -> str:
    """The signed JWT: ``iss`` the account, ``aud`` the token URI, one hour of validity."""
    try:
        private = rs256.load_pem(key["private_key"])
    except rs256.RsaKeyError as e:
        raise ProviderError(f"stackdriver: serviceAccountKey has an unreadable private_key: {e}") from None
    header = {"alg": "RS256", "typ": "JWT"}
    if key.get("private_key_id"):
        header["kid"] = key["private_key_id"]
    claims = {"iss": key["client_email"], "scope": SCOPE, "aud": key["token_uri"], "iat": int(now),
              "exp": int(now) + 3600}
    signing = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}"
    signature = rs256.sign(private, signing.encode())
    return f"{signing}.{_b64(signature)}"


def _token(body: bytes, source: str, now: float) -> Expiring[str]:
    """The ``access_token`` and when it expires (``expires_in`` seconds from now; without one it is not
    kept)."""
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("access_token"), str):
        raise ProviderError(f"error requesting stackdriver: {source} sent no access_token")
    token, lifetime = str(doc["access_token"]), doc.get("expires_in")
    if isinstance(lifetime, int | float) and not isinstance(lifetime, bool) and lifetime > 0:
        return Expiring(token, now + float(lifetime))
    return Expiring(token, None)


async def from_key(session: aiohttp.ClientSession, key: Mapping[str, str], now: float, seconds: float,
                   tokens: TokenCache) -> str:
    """The key's access token: kept while valid, else a new JWT exchanged at the key's ``token_uri``."""

    async def exchange() -> Expiring[str]:
        jwt = assertion(key, now)
        body = await request(session, "Google OAuth", "POST", URL(key["token_uri"]),
                             headers={"Content-Type": "application/x-www-form-urlencoded"},
                             data=urlencode({"grant_type": GRANT, "assertion": jwt}).encode(),
                             secrets=(jwt, key["private_key"]), timeout=seconds, limit=LIMIT)
        return _token(body, "Google OAuth", now)

    which = digest("google-key", key["client_email"], key["private_key"], key["token_uri"])
    return await tokens.get(which, now, exchange)


def _read_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(64 * 1024)
    except (OSError, UnicodeDecodeError):
        raise ProviderError(f"error requesting stackdriver: cannot read {path}") from None


async def default_token(session: aiohttp.ClientSession, env: Mapping[str, str], now: float,
                        seconds: float, tokens: TokenCache) -> str:
    """Google's default credentials: ``GOOGLE_APPLICATION_CREDENTIALS``, else the metadata server."""
    path = env.get("GOOGLE_APPLICATION_CREDENTIALS", "")
    if path:
        return await from_key(session, parse_key(_read_file(path)), now, seconds, tokens)
    host = env.get("GCE_METADATA_HOST", "")
    base = f"http://{host}" if host else METADATA
    url = URL(base + "/computeMetadata/v1/instance/service-accounts/default/token")

    async def fetch() -> Expiring[str]:
        body = await request(session, "GCE metadata", "GET", url, headers={"Metadata-Flavor": "Google"},
                             secrets=(), timeout=seconds, limit=LIMIT)
        return _token(body, "GCE metadata", now)

    return await tokens.get(digest("gce-metadata", str(url)), now, fetch)
