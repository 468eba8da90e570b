"""One bounded request to a provider's HTTP API, with the rules every outbound read follows
(:mod:`canaryd.analysis.bounded`): a size cap, no redirects, a time bound, and only a short scrubbed
excerpt of an answer quoted. Errors name the provider and the host, never a secret."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import orjson
from yarl import URL

from canaryd.analysis.bounded import AnswerTooLarge, excerpt, read_bounded, redirect_text
from canaryd.analysis.outbound import proxy_for
from canaryd.analysis.providers.protocol import ProviderError
from canaryd.analysis.urls import host_of


class StatusError(ProviderError):
    """A non-200 answer: its status and (capped) body, for a caller that retries some of them."""

    def __init__(self, message: str, status: int, body: bytes) -> None:
        super().__init__(message)
        self.status, self.body = status, body


def store_address(provider: str, address: str) -> str:
    """A store's ``spec.provider.address`` (InfluxDB, Graphite): required, http(s) with a host."""
    if not address or URL(address).scheme not in ("http", "https") or not URL(address).host:
        raise ProviderError(f"{provider} address {excerpt(address, limit=100)} is not a valid URL")
    return address


def secret_pair(provider: str, secrets: Mapping[str, str], present: bool,
                keys: tuple[tuple[str, str], tuple[str, str]]) -> tuple[str, str]:
    """The two values of a template's Secret a store needs, each ``(key, what it is)``: both required when
    the template has a ``secretRef`` (``present``), none without one; Flagger's texts when one is missing."""
    if not present:
        return "", ""
    for key, what in keys:
        if key not in secrets:
            raise ProviderError(f"{provider} credentials does not contain {what}")
    return secrets[keys[0][0]], secrets[keys[1][0]]


def endpoint(address: str, path: str) -> URL:
    """``address`` + ``path``, as Flagger concatenates them (the address's own path is kept)."""
    base = URL(address.rstrip("/"))
    return base.with_path(base.path.rstrip("/") + path, encoded=False)


async def request(session: aiohttp.ClientSession, provider: str, method: str, url: URL, *,
                  headers: Mapping[str, str], secrets: tuple[str, ...], timeout: float, limit: int,  # noqa: ASYNC109
                  params: Mapping[str, str] | None = None, data: bytes | None = None,
                  ssl: bool = True, describe: Callable[[bytes, int], str] | None = None) -> bytes:
    """The body of a 200 answer; :class:`ProviderError` otherwise (``Datadog api.example.com rate
    limited (429): …``). ``secrets`` are scrubbed from every quoted text; ``describe`` words a non-200
    answer in the provider's own terms (after the host is named)."""
    target = url.with_query(params) if params else url
    where = f"{provider} {host_of(str(url))}"
    try:
        async with asyncio.timeout(timeout):
            async with session.request(method, target, headers=dict(headers), data=data,
                                       allow_redirects=False, ssl=ssl,
                                       proxy=proxy_for(target)) as resp:
                status, reason = resp.status, resp.reason or ""
                if 300 <= status < 400:
                    raise ProviderError(f"{where} answered with a {redirect_text(resp)}")
                body = await read_bounded(resp, limit, str(url))
                retry_after = resp.headers.get("Retry-After", "")
    except TimeoutError:
        raise ProviderError(f"{where} timed out after {timeout:g}s") from None
    except AnswerTooLarge as e:
        raise ProviderError(f"{provider}: {e}") from None
    except (aiohttp.ClientError, ValueError) as e:
        text = excerpt(str(e) or type(e).__name__, str(url), *secrets)
        raise ProviderError(f"{where} unreachable: {text}") from None
    text = excerpt(body, str(url), *secrets)
    if status == 429:
        later = f", retry after {excerpt(retry_after, limit=20)}s" if retry_after else ""
        raise StatusError(f"{where} rate limited (429{later}): {text}", status, body)
    if status != 200 and describe is not None:
        said = excerpt(describe(body, status), "", *secrets, limit=300)
        raise StatusError(f"{where}: {said}", status, body)
    if status != 200:
        said = f"{text}: {status} {excerpt(reason, limit=40)}"
        raise StatusError(f"{where} error response: {said}", status, body)
    return body


def parse_json(body: bytes, provider: str, url: URL, secrets: tuple[str, ...]) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProviderError(f"{provider} {host_of(str(url))} sent an unreadable answer: "
                            f"{excerpt(body, str(url), *secrets)}") from None

