"""A minimal Prometheus instant-query client with Flagger's result rules (flagger-behaviour.md §5.2).

Errors are typed so a check can tell "no data" (the workload gets no traffic) from a provider failure,
and every message names the server, because users read these texts in Events to find the culprit.
"""

from __future__ import annotations

import asyncio
import base64
import math
import os
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from yarl import URL

_MAX_BODY = 512  # characters of an error body kept in messages


class PrometheusError(Exception):
    """Any failure to get a number out of Prometheus."""


class PrometheusUnreachable(PrometheusError):
    """Connection refused, DNS failure, reset… (``Prometheus <addr> unreachable: <reason>``)."""


class PrometheusTimeout(PrometheusError):
    """No answer within the timeout."""


class PrometheusHTTPError(PrometheusError):
    """HTTP status >= 400 (``error response: Status <code> <text>: <body>``)."""


class PrometheusBadResponse(PrometheusError):
    """A 2xx answer that is not a usable query result (bad JSON, matrix, unparsable value)."""


class NoValuesFound(PrometheusError):
    """An empty result or NaN: Flagger's ``ErrNoValuesFound``."""

    def __init__(self) -> None:
        super().__init__("no values found")


@dataclass(frozen=True)
class PrometheusClient:
    """One Prometheus server. ``session`` is owned by the caller (one per process)."""

    address: str
    session: aiohttp.ClientSession
    timeout: float = 5.0
    headers: dict[str, str] = field(default_factory=dict)
    bearer_token: str | None = None
    username: str | None = None
    password: str | None = None

    def query_url(self) -> URL:
        """``<address>/api/v1/query`` with the path joined onto the address's own path."""
        base = URL(self.address)
        return base.with_path(base.path.rstrip("/") + "/api/v1/query", encoded=False)

    async def query(self, promql: str) -> float:
        """Run an instant query and return its single value.

        Raises :class:`NoValuesFound` for an empty or NaN result, other :class:`PrometheusError`
        subclasses for transport, HTTP and format problems."""
        headers = dict(self.headers)
        if self.bearer_token:
            headers["Authorization"] = f"Bearer {self.bearer_token}"
        elif self.username is not None and self.password is not None:
            pair = f"{self.username}:{self.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        url = self.query_url().with_query({"query": promql})
        try:
            async with asyncio.timeout(self.timeout):
                async with self.session.get(url, headers=headers, allow_redirects=True) as resp:
                    body = await resp.read()
                    status, reason = resp.status, resp.reason or ""
        except TimeoutError:
            raise PrometheusTimeout(
                f"Prometheus {self.address} timed out after {_secs(self.timeout)}") from None
        except aiohttp.ClientConnectorError as e:
            raise PrometheusUnreachable(f"Prometheus {self.address} unreachable: {_reason(e)}") from None
        except aiohttp.ClientError as e:
            raise PrometheusUnreachable(f"Prometheus {self.address} unreachable: {e}") from None
        if status >= 400:
            text = body.decode("utf-8", "replace").strip()[:_MAX_BODY]
            raise PrometheusHTTPError(f"error response: Status {status} {reason}: {text}")
        return parse_result(body, self.address)

    async def is_online(self) -> bool:
        """Flagger's availability probe: ``vector(1)`` must return 1."""
        try:
            return await self.query("vector(1)") == 1.0
        except PrometheusError:
            return False


def parse_result(body: bytes, address: str = "Prometheus") -> float:
    """The value of an instant-query answer, by Flagger's rules: a matrix is an error, the *last*
    vector element wins, an empty result or NaN means no values."""
    try:
        doc: Any = orjson.loads(body)
        data = doc["data"]
        result = data["result"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise PrometheusBadResponse(f"Prometheus {address} sent an unreadable answer: "
                                    f"{body[:_MAX_BODY].decode('utf-8', 'replace')}") from None
    if data.get("resultType") in ("scalar", "string"):
        result = [{"value": result}]
    if not isinstance(result, list):
        raise PrometheusBadResponse(f"Prometheus {address} sent an unexpected result: {result!r}"[:_MAX_BODY])
    value: float | None = None
    for element in result:
        if not isinstance(element, dict):
            raise PrometheusBadResponse(f"Prometheus {address} sent an unexpected result element")
        if "values" in element:
            raise PrometheusBadResponse("query returned multiple values")
        try:
            value = float(element["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            raise PrometheusBadResponse(
                f"Prometheus {address} sent an unparsable value: {element!r}"[:_MAX_BODY]) from None
    if value is None or math.isnan(value):
        raise NoValuesFound()
    return value


def _reason(e: aiohttp.ClientConnectorError) -> str:
    """``connection refused`` rather than aiohttp's ``Cannot connect to host …`` sentence."""
    err = e.os_error
    if err.errno:
        return os.strerror(err.errno).lower()
    if err.strerror:
        return err.strerror.lower()
    return str(err) or str(e)


def _secs(seconds: float) -> str:
    return f"{seconds:g}s"
