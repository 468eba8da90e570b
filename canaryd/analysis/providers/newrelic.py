"""New Relic: ``GET <address>/v1/accounts/<account id>/query?nrql=…`` (the Insights query API), as
Flagger v1.44 calls it: the query key in ``X-Query-Key``, `` SINCE <interval seconds> seconds ago``
appended to the NRQL, and exactly one result with a non-null ``result`` as the value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from canaryd.analysis.bounded import excerpt
from canaryd.analysis.providers.protocol import ProviderError, ProviderNoValues, ProviderSettings
from canaryd.analysis.providers.request import endpoint, parse_json, request
from canaryd.model.providers import MetricProvider, MetricTemplate

NAME = "New Relic"
DEFAULT_ADDRESS = "https://insights-api.newrelic.com"
ACCOUNT_ID, QUERY_KEY = "newrelic_account_id", "newrelic_query_key"


def nrql(query: str, interval_seconds: float) -> str:
    return f"{query} SINCE {int(interval_seconds)} seconds ago"


class NewRelic:
    def address_of(self, provider: MetricProvider) -> str:
        """Where a query of ``provider`` goes, for messages."""
        return provider.address or DEFAULT_ADDRESS

    async def query(self, session: aiohttp.ClientSession, template: MetricTemplate, rendered_query: str,
                    secrets: Mapping[str, str], settings: ProviderSettings) -> float:
        for key in (ACCOUNT_ID, QUERY_KEY):
            if key not in secrets:
                raise ProviderError(f"newrelic credentials does not contain the key '{key}'")
        account, key = secrets[ACCOUNT_ID], secrets[QUERY_KEY]
        url = endpoint(template.provider.address or DEFAULT_ADDRESS, f"/v1/accounts/{account}/query")
        headers = {"X-Query-Key": key}
        hidden = (key, account)  # both come from the secret: neither is quoted
        body = await request(session, NAME, "GET", url, headers=headers, secrets=hidden,
                             params={"nrql": nrql(rendered_query, settings.interval_seconds)},
                             timeout=settings.timeout, limit=settings.max_answer_bytes,
                             ssl=not template.provider.insecure_skip_verify)
        return single_result(parse_json(body, NAME, url, hidden), excerpt(body, "", *hidden))


def single_result(doc: Any, quoted: str) -> float:
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, list) or len(results) != 1 or not isinstance(results[0], dict):
        raise ProviderNoValues(f"invalid response: {quoted}: no values found")
    value = results[0].get("result")
    if value is None:
        raise ProviderNoValues(f"invalid response: {quoted}: no values found")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProviderError(f"{NAME} sent an unparsable value: {excerpt(repr(value), limit=60)}")
    return float(value)
