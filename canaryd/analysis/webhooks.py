"""Calling a Canary's webhooks with Flagger's payload and success rule.

A webhook passes when its final HTTP status is at most 202 (so 204 fails, as in Flagger); a failure is
an ``error`` (the hook could not answer: transport, timeout, 3xx, 5xx, oversized answer) or a plain
no (4xx), which canaryd's verdict options tell apart (engine/verdicts.py). Transport
errors, 429 and 5xx other than 501 are retried ``retries`` times with exponential backoff; after that
the error reads ``POST <url> giving up after N attempt(s)``. Any other failing status surfaces the
response body, which is what load testers and gates answer with (e.g. ``Forbidden``). URLs in these
texts (they become Events) lose their user info and query, where tokens live.

The URL is chosen by whoever writes the Canary, so the answer is untrusted: it is read up to
``max_answer_bytes`` (a larger one fails the hook with ``answer from <host> larger than N bytes``),
redirects are not followed (a 3xx fails the hook, naming only the target's scheme, host and port),
and only a short, printable, scrubbed excerpt of the body is quoted.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from canaryd.analysis.bounded import ANSWER_LIMIT, AnswerTooLarge, excerpt, read_bounded, redirect_text
from canaryd.analysis.outbound import proxy_for
from canaryd.analysis.urls import display_url, scrub_url
from canaryd.engine.types import HookResult
from canaryd.model.spec import WebhookSpec

_RETRYABLE = frozenset({429, 500, 502, 503, 504})


def payload(
    *, name: str, namespace: str, phase: str, checksum: str, metadata: dict[str, Any]
) -> dict[str, Any]:
    """Flagger's webhook body; ``metadata`` is omitted when empty."""
    body: dict[str, Any] = {"name": name, "namespace": namespace, "phase": phase, "checksum": checksum}
    if metadata:
        body["metadata"] = {str(k): str(v) for k, v in metadata.items()}
    return body


async def call_webhook(
    session: aiohttp.ClientSession,
    hook: WebhookSpec,
    body: dict[str, Any],
    *,
    backoff: float = 1.0,
    max_answer_bytes: int = ANSWER_LIMIT,
) -> HookResult:
    """POST ``body`` to the hook; never raises (a failure is a result)."""
    attempts = max(0, hook.retries) + 1
    timeout = aiohttp.ClientTimeout(total=hook.timeout_seconds)
    ssl: bool = not hook.disable_tls
    last_error = ""
    for attempt in range(1, attempts + 1):
        try:
            async with session.post(
                hook.url, json=body, timeout=timeout, ssl=ssl, allow_redirects=False,
                proxy=proxy_for(hook.url),
            ) as resp:
                if 300 <= resp.status < 400:
                    return HookResult(hook.name, False, f"POST {display_url(hook.url)} {redirect_text(resp)}",
                                      error=True)
                text = excerpt(await read_bounded(resp, max_answer_bytes, hook.url), hook.url)
                if resp.status <= 202:
                    return HookResult(hook.name, True, text)
                if resp.status not in _RETRYABLE:  # 4xx: the hook answered no; 5xx: it could not answer
                    return HookResult(hook.name, False, text or f"status {resp.status}",
                                      error=resp.status >= 500)
                last_error = ""
        except AnswerTooLarge as err:  # not transient: asking again gets the same answer
            return HookResult(hook.name, False, str(err), error=True)
        except TimeoutError:
            last_error = f": timed out after {hook.timeout_seconds:g}s"
        except (aiohttp.ClientError, ValueError) as err:  # ValueError: a URL aiohttp refuses to send to
            last_error = f": {excerpt(scrub_url(str(err), hook.url), hook.url)}"
        if attempt < attempts:
            await asyncio.sleep(min(30.0, backoff * 2 ** (attempt - 1)))
    plural = "attempt(s)"
    url = display_url(hook.url)
    return HookResult(hook.name, False, f"POST {url} giving up after {attempts} {plural}{last_error}",
                      error=True)


async def call_hooks(
    session: aiohttp.ClientSession,
    hooks: list[WebhookSpec],
    *,
    name: str,
    namespace: str,
    phase: str,
    checksum: str,
    max_answer_bytes: int = ANSWER_LIMIT,
) -> tuple[HookResult, ...]:
    """Run hooks of one type in list order, stopping at the first failure (as Flagger does), except
    after a hook whose failure may not count (canaryd's verdict options: dryRun, consecutiveErrorLimit,
    initialDelay; engine/verdicts.py decides)."""
    results: list[HookResult] = []
    for hook in hooks:
        body = payload(name=name, namespace=namespace, phase=phase, checksum=checksum, metadata=hook.metadata)
        result = await call_webhook(session, hook, body, max_answer_bytes=max_answer_bytes)
        results.append(result)
        if not result.passed and not hook.policy.may_not_count:
            break
    return tuple(results)
