"""The influxdb provider against a loopback server: the request Flagger's InfluxDB client makes
(POST ``api/v2/query?org=``, ``Authorization: Token``, the JSON body with the annotated-CSV dialect)
and which value of an annotated-CSV answer is taken (docs/providers.md, "InfluxDB")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from canaryd.analysis.providers import PROVIDERS, ProviderError, ProviderNoValues, ProviderSettings
from canaryd.model.providers import parse_metric_template

from .loopback import Loopback

HEAD = ("#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,string,string,{t}\r\n"
        "#group,false,false,true,true,true,true,false\r\n"
        "#default,_result,,,,,,{d}\r\n"
        ",result,table,_start,_stop,_field,_measurement,_value\r\n")
ROW = ",,{n},2026-12-06T06:04:10Z,2026-12-06T06:05:10Z,count,requests,{v}\r\n"


def csv_answer(*values: str, datatype: str = "double", default: str = "") -> bytes:
    rows = "".join(ROW.format(n=i, v=v) for i, v in enumerate(values))
    return (HEAD.format(t=datatype, d=default) + rows + "\r\n").encode()


def tpl(address: str, secret: bool = True) -> Any:
    provider: dict[str, Any] = {"type": "influxdb", "address": address}
    if secret:
        provider["secretRef"] = {"name": "influx"}
    return parse_metric_template({"spec": {"provider": provider, "query": "from(bucket: \"b\")"}})


@pytest.fixture
async def server() -> AsyncIterator[Loopback]:
    s = await Loopback().start()
    yield s
    await s.stop()


async def ask(session: aiohttp.ClientSession, server: Loopback, secrets: dict[str, str] | None = None,
              address: str = "") -> float:
    creds = {"token": "tok-123456", "org": "my org"} if secrets is None else secrets
    return await PROVIDERS["influxdb"].query(session, tpl(address or server.url), 'from(bucket: "b")', creds,
                                             ProviderSettings(timeout=2))


async def test_request_shape(session: aiohttp.ClientSession, server: Loopback) -> None:
    server.answer(200, csv_answer("0.25"))
    assert await ask(session, server) == 0.25
    (req,) = server.seen
    assert (req.method, req.path, req.query_string) == ("POST", "/api/v2/query", "org=my+org")
    assert req.headers["Authorization"] == "Token tok-123456"
    assert req.headers["Content-Type"] == "application/json"
    assert orjson.loads(req.body) == {
        "query": 'from(bucket: "b")', "type": "flux",
        "dialect": {"annotations": ["datatype", "group", "default"], "delimiter": ",", "header": True}}


@pytest.mark.parametrize(("address", "path"),
                         [("/influx", "/api/v2/query"), ("/influx/", "/influx/api/v2/query")])
async def test_address_path_is_resolved_like_the_go_client(session: aiohttp.ClientSession, server: Loopback,
                                                           address: str, path: str) -> None:
    server.answer(200, csv_answer("1"))
    await ask(session, server, address=server.url + address)
    assert server.seen[0].path == path


async def test_without_secret_no_token_and_empty_org(session: aiohttp.ClientSession,
                                                     server: Loopback) -> None:
    server.answer(200, csv_answer("2"))
    value = await PROVIDERS["influxdb"].query(session, tpl(server.url, secret=False), "q", {},
                                              ProviderSettings(timeout=2))
    assert value == 2.0
    assert "Authorization" not in server.seen[0].headers and server.seen[0].query_string == "org="


@pytest.mark.parametrize(("answer", "expected"), [
    (csv_answer("0.5", "7"), 0.5),  # the first record wins
    (csv_answer("3", default="9"), 3.0),
    (csv_answer("", default="9"), 9.0),  # an empty cell takes the table's default
    (b"\r\n", 0.0),  # no records: 0, as in Flagger
])
async def test_value_choice(session: aiohttp.ClientSession, server: Loopback, answer: bytes,
                            expected: float) -> None:
    server.answer(200, answer)
    assert await ask(session, server) == expected


async def test_empty_value_is_no_values(session: aiohttp.ClientSession, server: Loopback) -> None:
    server.answer(200, csv_answer(""))
    with pytest.raises(ProviderNoValues, match="no values found"):
        await ask(session, server)


async def test_a_long_is_an_invalid_response(session: aiohttp.ClientSession, server: Loopback) -> None:
    server.answer(200, csv_answer("12", datatype="long"))
    with pytest.raises(ProviderError, match=r"^invalid response: "):
        await ask(session, server)


async def test_error_table_is_a_query_error(session: aiohttp.ClientSession, server: Loopback) -> None:
    server.answer(200, b"#datatype,string,string\r\n#group,true,true\r\n#default,,\r\n,error,reference\r\n"
                       b",failed to initialize execute state: no database,\r\n\r\n")
    with pytest.raises(ProviderError, match=r"query error: InfluxDB 127\.0\.0\.1:.*: failed to initialize"):
        await ask(session, server)


async def test_http_error_names_host_and_scrubs_token(session: aiohttp.ClientSession,
                                                      server: Loopback) -> None:
    server.answer(500, b'{"error":"bad token tok-123456"}', {"X-Influxdb-Error": "bad token"})
    with pytest.raises(ProviderError) as e:
        await ask(session, server)
    text = str(e.value)
    assert text.startswith("error accessing influxdb query api: InfluxDB 127.0.0.1:")
    assert "500" in text and "bad token" in text and "tok-123456" not in text


@pytest.mark.parametrize(("secrets", "message"), [
    ({"org": "o"}, "influxdb credentials does not contain an authentication token"),
    ({"token": "t"}, "influxdb credentials does not contain an organisation"),
])
async def test_secret_keys_are_required(session: aiohttp.ClientSession, server: Loopback,
                                        secrets: dict[str, str], message: str) -> None:
    with pytest.raises(ProviderError, match=f"^{message}$"):
        await ask(session, server, secrets)
    assert server.seen == []


async def test_redirect_is_not_followed(session: aiohttp.ClientSession, server: Loopback) -> None:
    server.answer(302, b"", {"Location": "http://169.254.169.254/latest"})
    with pytest.raises(ProviderError, match="not followed"):
        await ask(session, server)
    assert len(server.seen) == 1


async def test_answer_size_is_capped(session: aiohttp.ClientSession, server: Loopback) -> None:
    server.answer(200, csv_answer(*["1"] * 5000))
    with pytest.raises(ProviderError, match="larger than 1000 bytes"):
        await PROVIDERS["influxdb"].query(session, tpl(server.url), "q", {"token": "t", "org": "o"},
                                          ProviderSettings(timeout=2, max_answer_bytes=1000))
