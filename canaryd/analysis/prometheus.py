"""A minimal Prometheus instant-query client with Flagger's result rules (flagger-reference.md §5.2).

Errors are typed so a check can tell "no data" (the workload gets no traffic) from a provider failure,
and every message names the server, because users read these texts in Events to find the culprit.

The server is chosen by whoever writes the Canary, so its answer is untrusted: it is read up to
``max_answer_bytes`` (``answer from <host> larger than N bytes`` past that), redirects are not
followed (a redirect could point the query, and the credentials, at an internal endpoint whose answer
would then be quoted in status), only a short scrubbed excerpt of an answer is quoted, and the address
is shown without its user info and query (:func:`canaryd.analysis.urls.display_url`).
"""

from __future__ import annotations

import asyncio
import math
import os
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from yarl import URL

from canaryd.analysis.bounded import (
    METRICS_ANSWER_LIMIT,
    AnswerTooLarge,
    excerpt,
    read_bounded,
    redirect_text,
)
from canaryd.analysis.outbound import proxy_for
from canaryd.analysis.urls import basic_auth, display_url


class PrometheusError(Exception):
    """Any failure to get a number out of Prometheus."""


class PrometheusUnreachable(PrometheusError):
    """Connection refused, DNS failure, reset… (``Prometheus <addr> unreachable: <reason>``)."""


class PrometheusTimeout(PrometheusError):
    """No answer within the timeout."""


class PrometheusHTTPError(PrometheusError):
    """HTTP status >= 400 (``error response: Status <code> <text>: <body>``)."""


class PrometheusBadResponse(PrometheusError):
    """A 2xx answer that is not a usable query result (bad JSON, matrix, unparsable value), or an
    answer larger than the cap."""


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
    max_answer_bytes: int = METRICS_ANSWER_LIMIT
    insecure_skip_verify: bool = False  # a MetricTemplate's ``provider.insecureSkipVerify``

    @property
    def shown(self) -> str:
        """The address as messages show it: no user info, no query."""
        return display_url(self.address)

    def query_url(self, api: str = "query") -> URL:
        """``<address>/api/v1/<api>`` with the path joined onto the address's own path."""
        base = URL(self.address)
        return base.with_path(base.path.rstrip("/") + f"/api/v1/{api}", encoded=False)

    @property
    def secrets(self) -> tuple[str | None, ...]:
        """Credentials sent with a query: scrubbed out of every quoted answer."""
        return (self.password, self.bearer_token, basic_auth(self.username, self.password))

    async def query(self, promql: str) -> float:
        """Run an instant query and return its single value.

        Raises :class:`NoValuesFound` for an empty or NaN result, other :class:`PrometheusError`
        subclasses for transport, HTTP and format problems."""
        body = await self.get(self.query_url().with_query({"query": promql}))
        return parse_result(body, self.shown, *self.secrets)

    async def get(self, url: URL) -> bytes:
        """The body of a 2xx answer to ``url`` (an API call of this server), or a :class:`PrometheusError`
        for transport, HTTP and size problems."""
        headers = dict(self.headers)
        if self.bearer_token:
            headers["Authorization"] = f"Bearer {self.bearer_token}"
        elif self.username is not None and self.password is not None:
            headers["Authorization"] = "Basic " + basic_auth(self.username, self.password)
        secrets = self.secrets
        try:
            async with asyncio.timeout(self.timeout):
                async with self.session.get(url, headers=headers, allow_redirects=False,
                                            ssl=not self.insecure_skip_verify, proxy=proxy_for(url)) as resp:
                    status, reason = resp.status, resp.reason or ""
                    if 300 <= status < 400:
                        where = f"Prometheus {self.shown}"
                        raise PrometheusHTTPError(f"{where} answered with a {redirect_text(resp)}")
                    body = await read_bounded(resp, self.max_answer_bytes, self.address)
        except TimeoutError:
            raise PrometheusTimeout(
                f"Prometheus {self.shown} timed out after {_secs(self.timeout)}") from None
        except AnswerTooLarge as e:
            raise PrometheusBadResponse(str(e)) from None
        except aiohttp.ClientConnectorCertificateError as e:
            raise PrometheusUnreachable(f"Prometheus {self.shown} certificate error: {_cert_reason(e)}; "
                                        "set spec.provider.insecureSkipVerify: true in the MetricTemplate "
                                        "to skip the check") from None
        except aiohttp.ClientSSLError as e:
            raise PrometheusUnreachable(f"Prometheus {self.shown} TLS error: {e.os_error}") from None
        except aiohttp.ClientConnectorError as e:
            raise PrometheusUnreachable(f"Prometheus {self.shown} unreachable: {_reason(e)}") from None
        except (aiohttp.ClientError, ValueError) as e:  # ValueError: a request aiohttp refuses to send
            text = excerpt(str(e), self.address, *secrets)
            raise PrometheusUnreachable(f"Prometheus {self.shown} unreachable: {text}") from None
        if status >= 400:
            text = excerpt(body, self.address, *secrets)
            raise PrometheusHTTPError(f"error response: Status {status} {excerpt(reason, limit=40)}: {text}")
        return body

    async def is_online(self) -> bool:
        """Flagger's availability probe: ``vector(1)`` must return 1."""
        try:
            return await self.query("vector(1)") == 1.0
        except PrometheusError:
            return False


def parse_result(body: bytes, address: str = "Prometheus", *secrets: str | None) -> float:
    """The value of an instant-query answer, by Flagger's rules: a matrix is an error, the *last*
    vector element wins, an empty result or NaN means no values. Messages quote only an excerpt of
    the answer, with ``secrets`` (credentials sent with the query) scrubbed out."""
    try:
        doc: Any = orjson.loads(body)
        data = doc["data"]
        result = data["result"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise PrometheusBadResponse(f"Prometheus {address} sent an unreadable answer: "
                                    f"{excerpt(body, '', *secrets)}") from None
    if data.get("resultType") in ("scalar", "string"):
        result = [{"value": result}]
    if not isinstance(result, list):
        raise PrometheusBadResponse(f"Prometheus {address} sent an unexpected result: "
                                    f"{excerpt(repr(result), '', *secrets)}")
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
                f"Prometheus {address} sent an unparsable value: {excerpt(repr(element), '', *secrets)}"
            ) from None
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


def _cert_reason(e: aiohttp.ClientConnectorCertificateError) -> str:
    """``certificate verify failed: self-signed certificate``: OpenSSL's words, not errno 1's
    ``operation not permitted``."""
    cert = e.certificate_error
    detail = getattr(cert, "verify_message", "") or getattr(cert, "reason", "") or str(cert)
    return f"certificate verify failed: {detail}"


def _secs(seconds: float) -> str:
    return f"{seconds:g}s"
