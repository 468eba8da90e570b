"""One POST of a notification: JSON body, optional bearer token and proxy, a hard timeout.

Returns an error text instead of raising. Webhook URLs of chat services carry their credential in the
path, so error texts name only ``scheme://host[:port]`` and have the URL, its path and the token
scrubbed out of anything the HTTP library says. Redirects are not followed and the receiver's
answer is read only up to a cap, then quoted as a short printable excerpt (canaryd/analysis/bounded.py).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp

from canaryd.analysis.bounded import ANSWER_LIMIT, AnswerTooLarge, excerpt, read_bounded, redirect_text
from canaryd.analysis.outbound import proxy_for
from canaryd.analysis.urls import safe_url as safe_url  # re-exported: notify's callers import it here

TIMEOUT_SECONDS = 5.0
_REDACTED = "<redacted>"


def scrub(text: str, *secrets: str) -> str:
    """``text`` with every secret, and the path, query and user info of each URL among them, removed."""
    for secret in secrets:
        if "://" in secret:
            text = text.replace(secret, safe_url(secret))
    pieces: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        pieces.add(secret)
        try:
            parts = urlsplit(secret)
        except ValueError:
            continue
        pieces.update(p for p in (parts.path, parts.query, parts.username, parts.password) if p)
        pieces.update(seg for seg in parts.path.split("/") if len(seg) >= 4)
    for piece in sorted(pieces, key=len, reverse=True):
        if len(piece) >= 4 and piece not in ("http", "https"):
            text = text.replace(piece, _REDACTED)
    return text


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any],
    *,
    token: str = "",
    proxy: str = "",
    timeout_seconds: float = TIMEOUT_SECONDS,
    max_answer_bytes: int = ANSWER_LIMIT,
) -> str | None:
    """POST ``body``; None on a 2xx answer, else the reason (credentials scrubbed)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        async with session.post(
            url,
            json=body,
            headers=headers,
            proxy=proxy or proxy_for(url),
            timeout=aiohttp.ClientTimeout(total=timeout_seconds),
            allow_redirects=False,
        ) as resp:
            if 200 <= resp.status < 300:
                return None  # the answer is not read at all
            if 300 <= resp.status < 400:
                text = redirect_text(resp)
            else:
                text = excerpt(await read_bounded(resp, max_answer_bytes, url))
            reason = f"sending notification bad response {resp.status}: {text}"
    except AnswerTooLarge as err:
        reason = f"sending notification bad response: {err}"
    except TimeoutError:
        reason = f"sending notification failed: timed out after {timeout_seconds:g}s"
    except (aiohttp.ClientError, ValueError) as err:
        reason = f"sending notification failed: {type(err).__name__}: {err}"
    return scrub(reason, url, token, proxy)
