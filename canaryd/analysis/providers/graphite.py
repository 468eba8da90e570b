"""The ``graphite`` provider: Graphite's render API (``GET <address>/render?…&format=json``), read as
Flagger v1.44 reads it (docs/providers.md, "Graphite").

The template's query *is* the render URL's query string (``target=…&from=-1min``): runs of whitespace
become one space, ``format=json`` is set, and the parameters are sent sorted by name (as Go's
``url.Values.Encode`` does). The value is the last non-null datapoint of the answer, over every target
in order; no non-null datapoint is "no values".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote_plus

import aiohttp
from yarl import URL

from canaryd.analysis.bounded import excerpt
from canaryd.analysis.providers.protocol import ProviderError, ProviderNoValues, ProviderSettings
from canaryd.analysis.providers.request import parse_json, request, secret_pair, store_address
from canaryd.analysis.urls import basic_auth
from canaryd.model.providers import MetricTemplate

NAME = "graphite"
_SPACE = re.compile(r"\s+")


def render_url(address: str, query: str) -> URL:
    """``<address path>/render`` with the template's parameters plus ``format=json``, sorted by name."""
    pairs = [(k, v) for k, v in parse_qsl(_SPACE.sub(" ", query), keep_blank_values=True) if k != "format"]
    pairs.append(("format", "json"))
    pairs.sort(key=lambda kv: kv[0])  # stable: values of one name keep their order
    encoded = "&".join(f"{quote_plus(k, safe='~')}={quote_plus(v, safe='~')}" for k, v in pairs)
    base = URL(address)
    path = base.path.rstrip("/") + "/render"
    plain = base.with_path(path, encoded=False).with_query(None).with_fragment(None)
    return URL(f"{plain}?{encoded}", encoded=True)


def credentials(template: MetricTemplate, secrets: Mapping[str, str]) -> tuple[str, str]:
    """(username, password): both required when the template has a ``secretRef``."""
    return secret_pair(NAME, secrets, bool(template.provider.secret_name),
                       (("username", "a username"), ("password", "a password")))


@dataclass(frozen=True)
class GraphiteProvider:
    """Stateless: one GET per query."""

    async def query(self, session: aiohttp.ClientSession, template: MetricTemplate, rendered_query: str,
                    secrets: Mapping[str, str], settings: ProviderSettings) -> float:
        address = store_address(NAME, template.provider.address)
        username, password = credentials(template, secrets)
        headers: dict[str, str] = {}  # spec.provider.headers are not sent, as in Flagger
        if username and password:  # Flagger sends Basic auth only when both are non-empty
            headers["Authorization"] = "Basic " + basic_auth(username, password)
        url = render_url(address, rendered_query)
        scrub = tuple(s for s in (password, basic_auth(username, password)) if s)
        body = await request(session, "Graphite", "GET", url, headers=headers, secrets=scrub,
                             timeout=settings.timeout, limit=settings.max_answer_bytes,
                             ssl=not template.provider.insecure_skip_verify)
        return last_value(parse_json(body, "Graphite", url, scrub), body, scrub)


def _number(v: Any, what: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool):
        raise ProviderError(f"error unmarshaling {what}: {v!r}")
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            raise ProviderError(f"error unmarshaling {what}: {excerpt(v, limit=40)!r}") from None
    raise ProviderError(f"error unmarshaling {what}: {excerpt(repr(v), limit=40)}")


def last_value(doc: Any, body: bytes = b"", secrets: tuple[str, ...] = ()) -> float:
    """The last non-null datapoint over all targets; a datapoint is ``[value, timestamp]`` where either
    may be null, a number or a numeric string."""
    if not isinstance(doc, list):
        raise ProviderError(f"error unmarshaling result: expected a list of targets, "
                            f"'{excerpt(body, '', *secrets)}'")
    value: float | None = None
    for target in doc:
        points = target.get("datapoints") if isinstance(target, dict) else None
        if points is None:
            points = []
        if not isinstance(points, list):
            raise ProviderError(f"error unmarshaling result: datapoints is not a list, "
                                f"'{excerpt(body, '', *secrets)}'")
        for point in points:
            if not isinstance(point, list) or len(point) != 2:
                raise ProviderError(f"error unmarshaling data point: {excerpt(repr(point), limit=60)}")
            v = _number(point[0], "value")
            _number(point[1], "timestamp")
            if v is not None:
                value = v
    if value is None:
        raise ProviderNoValues("no values found")
    return value
