"""Google Cloud Monitoring (``stackdriver``) against a loopback fake of its REST API and of Google's
OAuth token endpoint: MQL through ``timeSeries:query``, a service-account key's RS256 JWT exchanged
for a token (the fake verifies the signature with the key's public half), or default credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from canaryd.analysis.providers import PROVIDERS, ProviderError, ProviderNoValues, ProviderSettings
from canaryd.model.providers import parse_metric_template

from .fakes import GoogleFake

MQL = ("fetch k8s_container | metric 'istio.io/service/server/request_count' | "
       "filter resource.namespace_name == 'test' | align rate(1m) | every 1m")
NOW = 1_704_067_800.0


@pytest.fixture
async def google() -> AsyncIterator[GoogleFake]:
    fake = GoogleFake()
    await fake.start()
    yield fake
    await fake.stop()


def template(address: str = "") -> Any:
    provider: dict[str, Any] = {"type": "stackdriver", "secretRef": {"name": "gcp"}}
    if address:
        provider["address"] = address
    return parse_metric_template({"spec": {"provider": provider, "query": MQL}})


async def ask(session: aiohttp.ClientSession, google: GoogleFake, secrets: dict[str, str],
              env: dict[str, str] | None = None, address: str = "") -> float:
    settings = ProviderSettings(timeout=5, now=lambda: NOW, environ=env or {})
    return await PROVIDERS["stackdriver"].query(session, template(address), MQL, secrets, settings)


async def test_service_account_key_and_first_point(google: GoogleFake,
                                                    session: aiohttp.ClientSession) -> None:
    """https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.timeSeries/query: POST
    ``{"query": …}`` with the bearer token; Flagger takes ``timeSeriesData[0].pointData[0].values[0]``
    (the newest point) as a double."""
    secrets = {"project": google.project, "serviceAccountKey": google.key_file()}
    assert await ask(session, google, secrets, address=google.url) == 0.93
    token_call, query_call = google.seen
    assert token_call.path == "/token" and google.assertions[-1]["iat"] == int(NOW)
    assert google.assertions[-1]["scope"] == "https://www.googleapis.com/auth/monitoring.read"
    assert (query_call.method, query_call.path) == ("POST", f"/v3/projects/{google.project}/timeSeries:query")
    assert orjson.loads(query_call.body) == {"query": MQL}
    assert query_call.headers["Authorization"] == f"Bearer {google.access_token}"


async def test_pages_no_values_and_non_double_values(google: GoogleFake,
                                                     session: aiohttp.ClientSession) -> None:
    secrets = {"project": google.project, "serviceAccountKey": google.key_file()}
    google.answer(200, {"timeSeriesData": [], "nextPageToken": "p2"})  # an empty first page: read the next
    assert await ask(session, google, secrets, address=google.url) == 0.93
    assert orjson.loads(google.seen[-1].body) == {"query": MQL, "pageToken": "p2"}
    google.answer(200, {"timeSeriesDescriptor": {}})
    with pytest.raises(ProviderNoValues):
        await ask(session, google, secrets, address=google.url)
    google.answer(200, {"timeSeriesData": [{"pointData": [{"values": [{"int64Value": "12"}]}]}]})
    assert await ask(session, google, secrets, address=google.url) == 0.0  # GetDoubleValue's zero, as Flagger
    denied = f"Permission monitoring.timeSeries.list denied ({google.access_token})"
    google.answer(403, {"error": {"code": 403, "status": "PERMISSION_DENIED", "message": denied}})
    with pytest.raises(ProviderError) as e:
        await ask(session, google, secrets, address=google.url)
    assert "error requesting stackdriver: PERMISSION_DENIED: Permission monitoring.timeSeries.list denied" \
        in str(e.value)
    assert google.access_token not in str(e.value)


async def test_a_bad_key_is_refused_by_the_token_endpoint(google: GoogleFake,
                                                          session: aiohttp.ClientSession) -> None:
    other = orjson.loads(google.key_file())
    other["client_email"] = "someone-else@my-project.iam.gserviceaccount.com"
    secrets = {"project": google.project, "serviceAccountKey": orjson.dumps(other).decode()}
    with pytest.raises(ProviderError, match="invalid_grant"):
        await ask(session, google, secrets, address=google.url)
    with pytest.raises(ProviderError, match="stackdriver credentials does not contain a project id"):
        await ask(session, google, {"serviceAccountKey": google.key_file()}, address=google.url)


async def test_default_credentials_from_the_metadata_server(google: GoogleFake,
                                                            session: aiohttp.ClientSession) -> None:
    """No serviceAccountKey: canaryd's own identity (GCE metadata server), sent to Google's endpoint or
    canaryd's CANARYD_CLOUD_MONITORING_ENDPOINT only, never to a template's ``address``."""
    host = google.url.removeprefix("http://")
    env = {"GCE_METADATA_HOST": host, "CANARYD_CLOUD_MONITORING_ENDPOINT": google.url}
    assert await ask(session, google, {"project": google.project}, env, address="http://127.0.0.1:9") == 0.93
    assert google.seen[0].headers["Metadata-Flavor"] == "Google"
    assert google.seen[1].path.endswith("timeSeries:query")
