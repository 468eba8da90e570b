"""Google Cloud Monitoring (``stackdriver``): an MQL query through ``projects/<project>/timeSeries:query``
(the REST form of ``QueryTimeSeries``, which Flagger v1.44 calls through Google's Go client). The value
is the first value of the first point of the first time series, read as a double (an integer-typed
value reads as 0, as Flagger's ``GetDoubleValue`` does)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from canaryd.analysis.bounded import excerpt
from canaryd.analysis.providers import gcpauth
from canaryd.analysis.providers.protocol import ProviderError, ProviderNoValues, ProviderSettings
from canaryd.analysis.providers.request import endpoint, parse_json, request
from canaryd.model.providers import MetricProvider, MetricTemplate

NAME = "Cloud Monitoring"
DEFAULT_ADDRESS = "https://monitoring.googleapis.com"
PROJECT, KEY = "project", "serviceAccountKey"
ENDPOINT_ENV = "CANARYD_CLOUD_MONITORING_ENDPOINT"  # canaryd's environment: where default credentials go
MAX_PAGES = 10  # pages read while the answer has no series yet (the Go iterator's page walk)


class Stackdriver:
    def address_of(self, provider: MetricProvider) -> str:
        """Where a query of ``provider`` goes, for messages."""
        return provider.address or DEFAULT_ADDRESS

    async def query(self, session: aiohttp.ClientSession, template: MetricTemplate, rendered_query: str,
                    secrets: Mapping[str, str], settings: ProviderSettings) -> float:
        provider = template.provider
        if provider.secret_name and PROJECT not in secrets:
            raise ProviderError("stackdriver credentials does not contain a project id")
        project = secrets.get(PROJECT, "")
        if not project:
            raise ProviderError("stackdriver: no project; set spec.provider.secretRef to a secret with the "
                                "key project")
        if KEY in secrets:
            token = await gcpauth.from_key(session, gcpauth.parse_key(secrets[KEY]), settings.now(),
                                           settings.timeout, settings.tokens)
            address = provider.address or DEFAULT_ADDRESS
        else:  # canaryd's own identity: only ever sent to Google (or canaryd's own endpoint setting)
            token = await gcpauth.default_token(session, settings.environ, settings.now(), settings.timeout,
                                                settings.tokens)
            address = settings.environ.get(ENDPOINT_ENV) or DEFAULT_ADDRESS
        url = endpoint(address, f"/v3/projects/{project}/timeSeries:query")
        hidden = (token, secrets.get(KEY, ""), project)  # every value of the secret is kept out of texts
        page = ""
        for _ in range(MAX_PAGES):
            payload: dict[str, Any] = {"query": rendered_query, **({"pageToken": page} if page else {})}
            body = await request(session, NAME, "POST", url, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                data=_json(payload), secrets=hidden, timeout=settings.timeout,
                limit=settings.max_answer_bytes, ssl=not provider.insecure_skip_verify,
                describe=lambda b, status: "error requesting stackdriver: " + _error(b, status))
            doc = parse_json(body, NAME, url, hidden)
            series = doc.get("timeSeriesData") if isinstance(doc, dict) else None
            if isinstance(series, list) and series:
                return first_double(series[0], excerpt(body, "", *hidden))
            page = str(doc.get("nextPageToken") or "") if isinstance(doc, dict) else ""
            if not page:
                break
        raise ProviderNoValues("invalid response: : no values found")


def _json(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload)


def _error(body: bytes, status: int) -> str:
    """Google's ``error.status: error.message`` (https://cloud.google.com/apis/design/errors)."""
    try:
        err = orjson.loads(body).get("error") or {}
        return f"{err.get('status') or status}: {err.get('message') or ''}"
    except (orjson.JSONDecodeError, AttributeError):
        return f"{status}: {excerpt(body)}"


def first_double(series: Any, quoted: str) -> float:
    points = series.get("pointData") if isinstance(series, dict) else None
    if not isinstance(points, list) or not points or not isinstance(points[0], dict):
        raise ProviderNoValues(f"invalid response: {quoted}: no values found")
    values = points[0].get("values")
    if not isinstance(values, list) or not values:
        raise ProviderNoValues(f"invalid response: {quoted}: no values found")
    value = values[0].get("doubleValue") if isinstance(values[0], dict) else None
    if value is None:
        return 0.0  # an int64, bool or distribution value: GetDoubleValue's zero
    try:
        return float(value)  # JSON numbers, and "NaN" / "Infinity" as strings
    except (TypeError, ValueError):
        raise ProviderError(f"{NAME} sent an unparsable value: {excerpt(repr(value), limit=60)}") from None
