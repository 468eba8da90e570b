"""Datadog: ``GET <address>/api/v1/query`` (Datadog's "Query timeseries points" API, v1), as Flagger
v1.44 calls it: the API and application keys in ``DD-API-KEY`` / ``DD-APPLICATION-KEY``, a window of
ten metric intervals ending now, and the *first* point of the first series as the value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from canaryd.analysis.bounded import excerpt
from canaryd.analysis.providers.protocol import ProviderError, ProviderNoValues, ProviderSettings
from canaryd.analysis.providers.request import endpoint, parse_json, request
from canaryd.model.providers import MetricProvider, MetricTemplate

NAME = "Datadog"
DEFAULT_ADDRESS = "https://api.datadoghq.com"
API_KEY, APP_KEY = "datadog_api_key", "datadog_application_key"
WINDOW_INTERVALS = 10  # from = now - 10 x interval, as Flagger


class Datadog:
    def address_of(self, provider: MetricProvider) -> str:
        """Where a query of ``provider`` goes, for messages."""
        return provider.address or DEFAULT_ADDRESS

    async def query(self, session: aiohttp.ClientSession, template: MetricTemplate, rendered_query: str,
                    secrets: Mapping[str, str], settings: ProviderSettings) -> float:
        for key in (API_KEY, APP_KEY):
            if key not in secrets:
                raise ProviderError(f"datadog credentials does not contain {key}")
        api_key, app_key = secrets[API_KEY], secrets[APP_KEY]
        url = endpoint(template.provider.address or DEFAULT_ADDRESS, "/api/v1/query")
        now = int(settings.now())
        start = now - int(WINDOW_INTERVALS * settings.interval_seconds)
        params = {"query": rendered_query, "from": str(start), "to": str(now)}
        headers = {"DD-API-KEY": api_key, "DD-APPLICATION-KEY": app_key}
        hidden = (api_key, app_key)
        body = await request(session, NAME, "GET", url, headers=headers, params=params, secrets=hidden,
                             timeout=settings.timeout, limit=settings.max_answer_bytes,
                             ssl=not template.provider.insecure_skip_verify)
        return first_point(parse_json(body, NAME, url, hidden), excerpt(body, "", *hidden))


def first_point(doc: Any, quoted: str) -> float:
    """``series[0].pointlist[0][1]``; a null point reads as 0, as Flagger's Go decoding does."""
    series = doc.get("series") if isinstance(doc, dict) else None
    if not isinstance(series, list) or not series or not isinstance(series[0], dict):
        raise ProviderNoValues(f"invalid response: {quoted}: no values found")
    points = series[0].get("pointlist")
    if not isinstance(points, list) or not points or not isinstance(points[0], list) or len(points[0]) < 2:
        raise ProviderNoValues(f"invalid response: {quoted}: no values found")
    value = points[0][1]
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProviderError(f"{NAME} sent an unparsable value: {excerpt(repr(value), limit=60)}")
    return float(value)
