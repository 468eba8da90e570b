"""The graphite provider against a loopback server: the render request Flagger's Graphite provider makes
(the template's query as the query string, whitespace collapsed, ``format=json``, parameters sorted,
Basic auth) and which datapoint is taken (docs/providers.md, "Graphite")."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from canaryd.analysis.providers import PROVIDERS, ProviderError, ProviderNoValues, ProviderSettings
from canaryd.model.providers import parse_metric_template

from .loopback import Loopback

QUERY = "target=sumSeries(\n    mesh.t.podinfo.5xx)\n&from=-1min"


def tpl(address: str, secret: bool = True) -> Any:
    provider: dict[str, Any] = {"type": "graphite", "address": address}
    if secret:
        provider["secretRef"] = {"name": "graphite"}
    return parse_metric_template({"spec": {"provider": provider, "query": QUERY}})


@pytest.fixture
async def server() -> AsyncIterator[Loopback]:
    s = await Loopback().start()
    yield s
    await s.stop()


async def ask(session: aiohttp.ClientSession, server: Loopback, secrets: dict[str, str] | None = None,
              address: str = "", query: str = QUERY) -> float:
    creds = {"username": "gu", "password": "pw-secret"} if secrets is None else secrets
    return await PROVIDERS["graphite"].query(session, tpl(address or server.url), query, creds,
                                             ProviderSettings(timeout=2))


def series(*points: list[Any]) -> dict[str, Any]:
    return {"target": "x", "datapoints": list(points)}


async def test_request_shape(session: aiohttp.ClientSession, server: Loopback) -> None:
    server.answer(200, orjson.dumps([series([1.5, 100])]))
    assert await ask(session, server) == 1.5
    (req,) = server.seen
    assert (req.method, req.path) == ("GET", "/render")
    # sorted by name, whitespace runs are one space, Go's query escaping
    assert req.query_string == "format=json&from=-1min&target=sumSeries%28+mesh.t.podinfo.5xx%29+"
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(b"gu:pw-secret").decode()


@pytest.mark.parametrize(("address", "path"), [("/graphite", "/graphite/render"),
                                               ("/graphite/", "/graphite/render")])
async def test_address_path_is_kept(session: aiohttp.ClientSession, server: Loopback, address: str,
                                    path: str) -> None:
    server.answer(200, orjson.dumps([series([1, 1])]))
    await ask(session, server, address=server.url + address, query="target=a&format=raw")
    assert server.seen[0].path == path and server.seen[0].query_string == "format=json&target=a"


async def test_no_basic_auth_without_secret(session: aiohttp.ClientSession, server: Loopback) -> None:
    server.answer(200, orjson.dumps([series([1, 1])]))
    await PROVIDERS["graphite"].query(session, tpl(server.url, secret=False), "target=a", {},
                                      ProviderSettings(timeout=2))
    assert "Authorization" not in server.seen[0].headers


@pytest.mark.parametrize(("answer", "expected"), [
    ([series([1, 10], [2, 20], [None, 30])], 2.0),  # the last non-null datapoint
    ([series([1, 10]), series([5, 10], [None, 20]), series([None, 10])], 5.0),  # over every target
    ([series(["0.75", "10"])], 0.75),  # numeric strings, as Flagger accepts them
])
async def test_value_choice(session: aiohttp.ClientSession, server: Loopback, answer: Any,
                            expected: float) -> None:
    server.answer(200, orjson.dumps(answer))
    assert await ask(session, server) == expected


@pytest.mark.parametrize("answer", [[], [series()], [series([None, 10], [None, 20])]])
async def test_no_non_null_datapoint_is_no_values(session: aiohttp.ClientSession, server: Loopback,
                                                  answer: Any) -> None:
    server.answer(200, orjson.dumps(answer))
    with pytest.raises(ProviderNoValues):
        await ask(session, server)


@pytest.mark.parametrize(("answer", "message"), [
    (b"<html>oops</html>", "unreadable answer"),
    (orjson.dumps({"a": 1}), "error unmarshaling result"),
    (orjson.dumps([series([1, 2, 3])]), "error unmarshaling data point"),
    (orjson.dumps([series([True, 2])]), "error unmarshaling value"),
])
async def test_garbage_is_an_error(session: aiohttp.ClientSession, server: Loopback, answer: bytes,
                                   message: str) -> None:
    server.answer(200, answer)
    with pytest.raises(ProviderError, match=message):
        await ask(session, server)


async def test_http_error_names_host_and_scrubs_password(session: aiohttp.ClientSession,
                                                         server: Loopback) -> None:
    server.answer(401, b"bad credentials for gu:pw-secret")
    with pytest.raises(ProviderError) as e:
        await ask(session, server)
    text = str(e.value)
    assert text.startswith("Graphite 127.0.0.1:") and "401" in text and "pw-secret" not in text


@pytest.mark.parametrize(("secrets", "message"), [
    ({"password": "p"}, "graphite credentials does not contain a username"),
    ({"username": "u"}, "graphite credentials does not contain a password"),
])
async def test_secret_keys_are_required(session: aiohttp.ClientSession, server: Loopback,
                                        secrets: dict[str, str], message: str) -> None:
    with pytest.raises(ProviderError, match=f"^{message}$"):
        await ask(session, server, secrets)
    assert server.seen == []


async def test_bad_address(session: aiohttp.ClientSession) -> None:
    with pytest.raises(ProviderError, match=r"^graphite address not-a-url is not a valid URL$"):
        await PROVIDERS["graphite"].query(session, tpl("not-a-url", secret=False), "target=a", {},
                                          ProviderSettings(timeout=2))


async def test_rate_limit_names_the_provider(session: aiohttp.ClientSession, server: Loopback) -> None:
    server.answer(429, b"slow down", {"Retry-After": "7"})
    with pytest.raises(ProviderError) as e:
        await ask(session, server)
    text = str(e.value)
    assert text.startswith("Graphite 127.0.0.1:") and "rate limited (429, retry after 7s)" in text


async def test_template_headers_are_not_sent(session: aiohttp.ClientSession, server: Loopback) -> None:
    """As in Flagger, whose Graphite and InfluxDB clients take no custom headers."""
    server.answer(200, orjson.dumps([series([1, 1])]))
    tpl = parse_metric_template({"spec": {"provider": {"type": "graphite", "address": server.url,
                                                       "headers": {"X-Scope-OrgID": ["t1"]}},
                                          "query": "target=a"}})
    await PROVIDERS["graphite"].query(session, tpl, "target=a", {}, ProviderSettings(timeout=2))
    assert "X-Scope-OrgID" not in server.seen[0].headers
