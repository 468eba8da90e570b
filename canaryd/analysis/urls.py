"""URLs as they may appear in Events, status and logs: without the credentials users put into them.

Webhook and alert URLs often carry a secret (``http://token:T@flagger-loadtester.test/``,
``…/gate/check?token=T``, a chat webhook's path). Events and logs are read by more people than the
Canary's author, so every URL quoted there goes through one of these."""

from __future__ import annotations

from urllib.parse import urlsplit

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
    return f"{parts.scheme}://{host}{port}"


def without_credentials(url: str) -> str:
    """``scheme://host[:port]/path`` of a URL: user info, query and fragment dropped, the path kept (a
    webhook's path says which gate or hook failed, as in Flagger's ``POST <url> giving up …``)."""
    base = safe_url(url)
    if base == "<invalid URL>":
        return base
    return base + urlsplit(url).path


def scrub_url(text: str, url: str) -> str:
    """``text`` (e.g. an HTTP library's error) with ``url`` and its user info and query replaced."""
    try:
        parts = urlsplit(url)
        secrets = [p for p in (parts.password, parts.username, parts.query, parts.fragment) if p]
    except ValueError:
        secrets = []
    text = text.replace(url, without_credentials(url))
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text
