"""URLs as they may appear in Events, status and logs: without the credentials users put into them.

Webhook and alert URLs often carry a secret (``http://token:T@flagger-loadtester.test/``,
``…/gate/check?token=T``, a chat webhook's path). Events and logs are read by more people than the
Canary's author, so every URL quoted there goes through one of these: :func:`display_url` for any
address shown (Prometheus servers, webhooks), :func:`safe_url` where even the path is secret."""

from __future__ import annotations

import base64
from urllib.parse import quote, unquote, urlsplit

REDACTED = "<redacted>"


def safe_url(url: str) -> str:
    """``scheme://host[:port]`` of a URL, without user info, path or query (chat webhooks keep their
    secret in the path)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    if not parts.scheme or not host:
        return "<invalid URL>"
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return _printable(f"{parts.scheme}://{host}{port}")


def display_url(url: str) -> str:
    """How an address is shown everywhere (status, Events, logs): ``scheme://host[:port]/path``, with
    user info, query and fragment dropped and the path kept (a webhook's path says which gate or hook
    failed, as in Flagger's ``POST <url> giving up …``; a Prometheus path says which tenant)."""
    base = safe_url(url)
    if base == "<invalid URL>":
        return base
    return base + _printable(urlsplit(url).path)


def _printable(text: str) -> str:
    """Control and other non-printable characters percent-encoded: a URL written into a spec must not
    put them into a message."""
    return "".join(c if c.isprintable() else quote(c) for c in text)


def host_of(url: str) -> str:
    """``host[:port]`` of a URL, for short messages such as ``answer from <host> larger than N bytes``."""
    base = safe_url(url)
    return base if base == "<invalid URL>" else base.split("://", 1)[1]


def basic_auth(username: str | None, password: str | None) -> str:
    """The base64 form of ``username:password`` sent in ``Authorization: Basic``: a peer that echoes
    its request headers echoes this, so it is scrubbed like the password itself."""
    if username is None or password is None:
        return ""
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def scrub_url(text: str, url: str) -> str:
    """``text`` (e.g. an HTTP library's error, or a peer's answer) with ``url`` and its user info
    (also in its Basic-auth form) and query replaced."""
    try:
        parts = urlsplit(url)
        secrets = [p for p in (parts.password, parts.query, parts.fragment) if p]
        if parts.username and len(parts.username) >= 3:  # not every "a" of the text
            secrets.append(parts.username)
        if parts.username or parts.password:  # aiohttp sends URL user info as Basic auth
            secrets.append(basic_auth(unquote(parts.username or ""), unquote(parts.password or "")))
    except ValueError:
        secrets = []
    text = text.replace(url, display_url(url))
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text
