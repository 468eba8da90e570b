"""Reading a peer's answer without trusting its size, and quoting it without trusting its content.

A Canary author picks the Prometheus server and webhook URLs canaryd calls, so what comes back is
tenant-controlled input: an answer of any size would be read into canaryd's memory (one 300 MB answer
used to take it past its memory limit), and an answer's text lands in status and Events, which other
people read. So every answer is read up to a cap, and only a short, printable, scrubbed excerpt of it
is ever quoted.
"""

from __future__ import annotations

import aiohttp
from yarl import URL

from canaryd.analysis.urls import host_of, safe_url, scrub_url

METRICS_ANSWER_LIMIT = 10 * 1024 * 1024  # bytes of a Prometheus answer (--max-metrics-answer-bytes)
ANSWER_LIMIT = 64 * 1024  # bytes of a webhook or notifier answer (--max-webhook-answer-bytes)
EXCERPT_CHARS = 200  # characters of a peer's answer quoted in a message


class AnswerTooLarge(Exception):
    """The peer sent (or announced) more than the cap: ``answer from <host> larger than N bytes``."""

    def __init__(self, url: str, limit: int) -> None:
        super().__init__(f"answer from {host_of(url)} larger than {limit} bytes")


async def read_bounded(resp: aiohttp.ClientResponse, limit: int, url: str) -> bytes:
    """The body of ``resp``, at most ``limit`` bytes (after decompression); raises
    :class:`AnswerTooLarge` as soon as the announced length or the bytes read pass the cap, without
    reading the rest (the connection is then closed rather than reused)."""
    if resp.content_length is not None and resp.content_length > limit:
        raise AnswerTooLarge(url, limit)
    body = bytearray()
    while True:
        chunk = await resp.content.read(limit + 1 - len(body))
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > limit:
            raise AnswerTooLarge(url, limit)


def excerpt(answer: bytes | str, url: str = "", *secrets: str | None, limit: int = EXCERPT_CHARS) -> str:
    """At most ``limit`` printable characters of a peer's answer, for a status message or Event:
    control and other non-printable characters become spaces, runs of whitespace one space, ``url``'s
    user info and query and each of ``secrets`` (credentials canaryd sent, which a peer may echo) are
    replaced, and a cut is marked with ``…``."""
    raw = answer[: limit * 16]  # never process megabytes for a 200-character quote
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if url:
        text = scrub_url(text, url)
    for secret in sorted((s for s in secrets if s and len(s) >= 3), key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def redirect_text(resp: aiohttp.ClientResponse) -> str:
    """``redirect (302 Found) to https://host:port not followed``: where a redirect pointed, reduced
    to scheme, host and port (a Location may carry tokens in its path or query)."""
    location = resp.headers.get("Location", "")
    try:
        absolute = str(resp.url.join(URL(location))) if location else ""
    except ValueError:
        absolute = location
    target = excerpt(safe_url(absolute), limit=100) if absolute else "nowhere"
    return f"redirect ({resp.status} {excerpt(resp.reason or '', limit=40)}) to {target} not followed"
