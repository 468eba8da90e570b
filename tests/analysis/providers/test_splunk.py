"""Splunk Observability Cloud (``splunk``) against a loopback SignalFlow WebSocket server
(:mod:`.signalflow`): the messages canaryd sends for a template, the value it reads from the stream
(Flagger v1.44: the last data point, one time series only), and bounded, scrubbed errors
(docs/providers.md)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from canaryd.analysis.checks import default_registry, run_checks
from canaryd.analysis.providers import PROVIDERS, ProviderError, ProviderNoValues, ProviderSettings
from canaryd.analysis.providers.splunk import stream_url
from canaryd.model.providers import parse_metric_template

from ..specs import canary, metric
from .signalflow import DOUBLE, INT, LONG, SignalFlowFake, control, data, error, info, metadata

NOW = 1_704_067_800.0  # 2024-01-01T00:10:00Z
PROGRAM = "data('requests.errors', filter=filter('service', 'podinfo')).sum().publish()"


def settings(**kw: Any) -> ProviderSettings:
    base: dict[str, Any] = {"interval_seconds": 60.0, "timeout": 5.0, "now": lambda: NOW, "environ": {}}
    return ProviderSettings(**{**base, **kw})


@pytest.fixture
async def sf() -> AsyncIterator[SignalFlowFake]:
    fake = SignalFlowFake()
    await fake.start()
    yield fake
    await fake.stop()


def case(fake: SignalFlowFake, token: str | None = None) -> tuple[Any, dict[str, str]]:
    t = parse_metric_template({"spec": {"provider": {"type": "splunk", "address": fake.url,
                                                     "secretRef": {"name": "sf"}}, "query": PROGRAM}})
    return t, {"sf_token_key": fake.token if token is None else token}


async def run(fake: SignalFlowFake, session: aiohttp.ClientSession, **kw: Any) -> float:
    t, secrets = case(fake)
    return await PROVIDERS["splunk"].query(session, t, PROGRAM, secrets, settings(**kw))


@pytest.mark.parametrize(("address", "stream"), [
    ("https://api.us1.signalfx.com", "wss://stream.us1.signalfx.com/v2/signalflow"),
    ("wss://stream.eu0.signalfx.com", "wss://stream.eu0.signalfx.com/v2/signalflow"),
    ("http://127.0.0.1:8080", "ws://127.0.0.1:8080/v2/signalflow"),
    ("https://api.example.com/apis", "wss://stream.example.com/apis/v2/signalflow"),  # first "api" only
])
def test_the_address_is_rewritten_to_the_stream_endpoint_as_flagger_does(address: str, stream: str) -> None:
    assert stream_url(address) == stream


async def test_authenticate_then_execute_and_the_last_point_is_the_value(
        sf: SignalFlowFake, session: aiohttp.ClientSession) -> None:
    """websocket_request_messages: ``authenticate`` with the token, then ``execute`` with the program,
    a channel, ``start``/``stop`` in ms (ten intervals), ``resolution`` 0 (the job's own) and
    ``immediate``; data points arrive in binary data messages, interleaved with control, info and
    metadata messages, until ``END_OF_CHANNEL``."""
    sf.script = [control("STREAM_START"), control("JOB_START", handle="HANDLE1"), info(), metadata(7),
                 data([(DOUBLE, 7, 0.25)]), data([(DOUBLE, 7, 0.5)]), data([(DOUBLE, 7, 0.75)]),
                 control("END_OF_CHANNEL")]
    assert await run(sf, session, interval_seconds=30.0) == 0.75
    assert sf.paths == ["/v2/signalflow/connect"]
    auth, execute = sf.received
    assert auth == {"type": "authenticate", "token": sf.token}
    assert execute == {"type": "execute", "program": PROGRAM, "channel": "ch-1", "start": 1704067500000,
                       "stop": 1704067800000, "resolution": 0, "maxDelay": 0, "immediate": True,
                       "timezone": ""}


@pytest.mark.parametrize(("points", "want"), [
    ([(LONG, 3, 42)], 42.0),
    ([(LONG, 3, -5)], -5.0),
    ([(INT, 3, 7)], 7.0),
    ([(DOUBLE, 3, 1.5), (9, 3, 0)], 1.5),  # an unknown value type is no value
])
async def test_value_types(sf: SignalFlowFake, session: aiohttp.ClientSession,
                           points: list[tuple[int, int, float]], want: float) -> None:
    sf.script = [data(points), control("END_OF_CHANNEL")]
    assert await run(sf, session) == want


async def test_compressed_data_messages_and_other_channels(sf: SignalFlowFake,
                                                           session: aiohttp.ClientSession) -> None:
    """A gzip-compressed data message (header flag 1) is read; a message of another channel is not."""
    sf.script = [data([(DOUBLE, 1, 2.5)], compressed=True), data([(DOUBLE, 1, 99.0)], channel="ch-9"),
                 control("END_OF_CHANNEL", channel="ch-9"), control("CHANNEL_ABORT")]
    assert await run(sf, session) == 2.5


@pytest.mark.parametrize("script", [
    [control("END_OF_CHANNEL")],
    [metadata(1), control("END_OF_CHANNEL")],
    [data([(0, 1, 3.0)]), control("END_OF_CHANNEL")],
    [data([])],  # the server closes without END_OF_CHANNEL (below)
])
async def test_no_values(sf: SignalFlowFake, session: aiohttp.ClientSession, script: list[Any]) -> None:
    sf.script = script
    sf.mode = "close"
    with pytest.raises(ProviderNoValues, match=r"^invalid response: no values found$"):
        await run(sf, session, timeout=2.0)


async def test_two_time_series_are_an_error(sf: SignalFlowFake, session: aiohttp.ClientSession) -> None:
    sf.script = [data([(DOUBLE, 1, 1.0), (DOUBLE, 2, 2.0)]), control("END_OF_CHANNEL")]
    with pytest.raises(ProviderError, match=r"^invalid response: query returned multiple values$") as e:
        await run(sf, session)
    assert not isinstance(e.value, ProviderNoValues)


async def test_a_program_error_is_quoted(sf: SignalFlowFake, session: aiohttp.ClientSession) -> None:
    sf.script = [control("STREAM_START"), error(400, "ANALYTICS_PROGRAM_ERROR", "line 1: unknown function"),
                 data([(DOUBLE, 1, 1.0)]), control("END_OF_CHANNEL")]
    host = sf.url.removeprefix("http://")
    with pytest.raises(ProviderError) as e:
        await run(sf, session)
    assert str(e.value) == (f"Splunk {host}: error executing query: 400 (ANALYTICS_PROGRAM_ERROR): line 1: "
                            "unknown function")


async def test_a_wrong_token_is_the_servers_error_with_the_token_scrubbed(
        sf: SignalFlowFake, session: aiohttp.ClientSession) -> None:
    t, secrets = case(sf, token="wrong-TOKEN-abcdef")
    with pytest.raises(ProviderError) as e:
        await PROVIDERS["splunk"].query(session, t, PROGRAM, secrets, settings())
    host = sf.url.removeprefix("http://")
    assert str(e.value) == f"Splunk {host}: error executing query: 401: Invalid auth token <redacted>"
    assert sf.of_type("authenticate") == [{"type": "authenticate", "token": "wrong-TOKEN-abcdef"}]


async def test_missing_token_and_address_use_flaggers_texts(sf: SignalFlowFake,
                                                            session: aiohttp.ClientSession) -> None:
    t, _ = case(sf)
    with pytest.raises(ProviderError, match=r"^splunk credentials does not contain sf_token_key$"):
        await PROVIDERS["splunk"].query(session, t, PROGRAM, {}, settings())
    bare = parse_metric_template({"spec": {"provider": {"type": "splunk"}, "query": PROGRAM}})
    with pytest.raises(ProviderError, match=r"^splunk endpoint is not set$"):
        await PROVIDERS["splunk"].query(session, bare, PROGRAM, {"sf_token_key": "x"}, settings())
    assert sf.received == []


async def test_hostile_streams_are_bounded_errors_naming_provider_and_host(
        sf: SignalFlowFake, session: aiohttp.ClientSession) -> None:
    host = sf.url.removeprefix("http://")
    too_large = f"^Splunk: answer from {re.escape(host)} larger than 100000 bytes$"
    sf.script = [lambda ch: "\x00<html>garbage " + sf.token]
    with pytest.raises(ProviderError) as e:
        await run(sf, session)
    assert str(e.value).startswith(f"Splunk {host} sent an unreadable message: ")
    assert sf.token not in str(e.value)
    sf.script = [lambda ch: b"\x01\x05\x00\x00short"]
    with pytest.raises(ProviderError, match=f"^Splunk {re.escape(host)} sent an unreadable message"):
        await run(sf, session)
    sf.script = [data([(DOUBLE, 1, 1.0)] * 1000)] * 10 + [control("END_OF_CHANNEL")]  # 17 kB each
    with pytest.raises(ProviderError, match=too_large):
        await run(sf, session, max_answer_bytes=100_000)
    sf.script = [data([(DOUBLE, 1, 1.0)] * 10_000), control("END_OF_CHANNEL")]  # one 170 kB message
    with pytest.raises(ProviderError, match=too_large):
        await run(sf, session, max_answer_bytes=100_000)
    sf.script = [data([(DOUBLE, 1, 1.0)] * 10_000, compressed=True), control("END_OF_CHANNEL")]  # a gzip bomb
    with pytest.raises(ProviderError, match=r"larger than 100000 bytes$"):
        await run(sf, session, max_answer_bytes=100_000)
    sf.mode = "hang"
    started = time.monotonic()
    with pytest.raises(ProviderError, match=f"^Splunk {re.escape(host)} timed out after 0.3s$"):
        await run(sf, session, timeout=0.3)
    assert time.monotonic() - started < 3
    sf.mode, sf.received = "redirect", []
    with pytest.raises(ProviderError, match="redirect, not followed"):
        await run(sf, session)
    assert sf.paths[-2:] == ["/v2/signalflow/connect", "/elsewhere/connect"]
    assert sf.received == []  # the token was never sent to where the redirect pointed
    sf.mode = "refuse"
    refused = f"^Splunk {re.escape(host)} refused the WebSocket connection: 401"
    with pytest.raises(ProviderError, match=refused):
        await run(sf, session)


async def test_a_splunk_template_check_end_to_end(sf: SignalFlowFake, session: aiohttp.ClientSession) -> None:
    """The MetricTemplate check renders the program, reads the token from the template's secret and
    compares the value with the threshold; the token never reaches the message."""
    tpl = {"spec": {"provider": {"type": "splunk", "address": sf.url, "secretRef": {"name": "sf-token"}},
                    "query": "data('errors', filter=filter('service', '{{ target }}')).sum().publish()"}}

    token = sf.token

    async def secret(ns: str, name: str) -> dict[str, str] | None:
        return {"sf_token_key": token} if (ns, name) == ("test", "sf-token") else None

    reg = default_registry(lambda ns, name: tpl if (ns, name) == ("test", "errors") else None, secret)
    m = metric("errors", template="errors", hi=5.0, interval="1m")
    sf.script = [data([(LONG, 4, 3)]), control("END_OF_CHANNEL")]
    (res,) = await run_checks(canary(m), session=session, metrics_server="http://unused.invalid", timeout=5,
                              registry=reg)
    assert (res.verdict, res.value) == ("pass", 3.0)
    program = "data('errors', filter=filter('service', 'podinfo')).sum().publish()"
    assert sf.of_type("execute")[-1]["program"] == program
    sf.token = "rotated-on-the-server"
    (res,) = await run_checks(canary(m), session=session, metrics_server="http://unused.invalid", timeout=5,
                              registry=reg)
    assert res.verdict == "error" and "Metric query failed for errors: Splunk" in res.message
    assert "401: Invalid auth token <redacted>" in res.message
