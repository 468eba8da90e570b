"""Dynatrace: ``GET <address>/api/v2/metrics/query`` (Metrics API v2), as Flagger v1.44 calls it:
``Authorization: Api-Token <token>``, ``resolution=Inf`` over ten metric intervals ending now (in
milliseconds), and the first value of the *last* series of the first result as the value. There is no
default address (the environment URL is per tenant)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from canaryd.analysis.bounded import excerpt
from canaryd.analysis.providers.protocol import ProviderError, ProviderNoValues, ProviderSettings
from canaryd.analysis.providers.request import endpoint, parse_json, request
from canaryd.model.providers import MetricTemplate

NAME = "Dynatrace"
TOKEN = "dynatrace_token"
WINDOW_INTERVALS = 10


class Dynatrace:
    async def query(self, session: aiohttp.ClientSession, template: MetricTemplate, rendered_query: str,
                    secrets: Mapping[str, str], settings: ProviderSettings) -> float:
        if not template.provider.address:
            raise ProviderError("dynatrace endpoint is not set")
        if TOKEN not in secrets:
            raise ProviderError(f"dynatrace credentials does not contain {TOKEN}")
        token = secrets[TOKEN]
        url = endpoint(template.provider.address, "/api/v2/metrics/query")
        now_ms = int(settings.now()) * 1000
        window_ms = int(WINDOW_INTERVALS * settings.interval_seconds * 1000)
        params = {"metricSelector": rendered_query, "resolution": "Inf", "from": str(now_ms - window_ms),
                  "to": str(now_ms)}
        headers = {"Authorization": f"Api-Token {token}"}
        body = await request(session, NAME, "GET", url, headers=headers, params=params, secrets=(token,),
                             timeout=settings.timeout, limit=settings.max_answer_bytes,
                             ssl=not template.provider.insecure_skip_verify)
        return last_series_value(parse_json(body, NAME, url, (token,)), excerpt(body, "", token))


def last_series_value(doc: Any, quoted: str) -> float:
    """``result[0].data[-1].values[0]``; a null value reads as 0, as Flagger's Go decoding does."""
    no_values = ProviderNoValues(f"invalid response: {quoted}: no values found")
    result = doc.get("result") if isinstance(doc, dict) else None
    if not isinstance(result, list) or not result or not isinstance(result[0], dict):
        raise no_values
    data = result[0].get("data")
    if not isinstance(data, list) or not data or not isinstance(data[-1], dict):
        raise no_values
    values = data[-1].get("values")
    if not isinstance(values, list) or not values:
        raise no_values
    value = values[0]
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProviderError(f"{NAME} sent an unparsable value: {excerpt(repr(value), limit=60)}")
    return float(value)
