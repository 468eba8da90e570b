"""SaaS metric providers (Datadog, New Relic, Dynatrace, CloudWatch) against loopback fakes of their
documented HTTP APIs (:mod:`.fakes`): the request canaryd makes for a template, the value it reads from
the documented answer shape, and Flagger v1.44's rules for "no values" (docs/providers.md)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from canaryd.analysis.base import CheckContext
from canaryd.analysis.checks import default_registry, run_checks
from canaryd.analysis.providers import PROVIDERS, ProviderError, ProviderNoValues, ProviderSettings
from canaryd.analysis.providers.sigv4 import Credentials, sign
from canaryd.analysis.templates import MetricTemplateCheck
from canaryd.model.providers import parse_metric_template

from ..specs import canary, metric
from .fakes import CloudWatchFake, DatadogFake, DynatraceFake, Fake, GoogleFake, NewRelicFake, aws_error

NOW = 1_704_067_800.0  # 2024-01-01T00:10:00Z


def template(provider: dict[str, Any], query: str = "q") -> Any:
    return parse_metric_template({"spec": {"provider": provider, "query": query}})


def settings(**kw: Any) -> ProviderSettings:
    base: dict[str, Any] = {"interval_seconds": 60.0, "timeout": 5.0, "now": lambda: NOW, "environ": {}}
    return ProviderSettings(**{**base, **kw})


@pytest.fixture
async def dd() -> AsyncIterator[DatadogFake]:
    fake = DatadogFake()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def nr() -> AsyncIterator[NewRelicFake]:
    fake = NewRelicFake()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def dt() -> AsyncIterator[DynatraceFake]:
    fake = DynatraceFake()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def cw() -> AsyncIterator[CloudWatchFake]:
    fake = CloudWatchFake()
    await fake.start()
    yield fake
    await fake.stop()


def dd_secrets(fake: DatadogFake) -> dict[str, str]:
    return {"datadog_api_key": fake.api_key, "datadog_application_key": fake.app_key}


async def test_datadog_request_and_first_point(dd: DatadogFake, session: aiohttp.ClientSession) -> None:
    """https://docs.datadoghq.com/api/latest/metrics/#query-timeseries-points: GET /api/v1/query with
    ``from``/``to`` (POSIX seconds), keys in DD-API-KEY / DD-APPLICATION-KEY; the answer's
    ``series[].pointlist`` is ``[[ms, value], …]`` and Flagger takes the first point of the first series."""
    t = template({"type": "datadog", "address": dd.url, "secretRef": {"name": "dd"}}, "avg:x{a:b}")
    value = await PROVIDERS["datadog"].query(session, t, "avg:x{a:b}", dd_secrets(dd), settings())
    assert value == 99.5
    (seen,) = dd.seen
    assert (seen.method, seen.path) == ("GET", "/api/v1/query")
    assert seen.query == {"query": "avg:x{a:b}", "from": str(int(NOW) - 600), "to": str(int(NOW))}
    assert seen.headers["DD-API-KEY"] == dd.api_key and seen.headers["DD-APPLICATION-KEY"] == dd.app_key
    # 2m interval: ten intervals back
    await PROVIDERS["datadog"].query(session, t, "q", dd_secrets(dd), settings(interval_seconds=120))
    assert dd.seen[-1].query["from"] == str(int(NOW) - 1200)


@pytest.mark.parametrize("answer", [{"series": []}, {"series": [{"pointlist": []}]}, {"status": "ok"}])
async def test_datadog_no_values(dd: DatadogFake, session: aiohttp.ClientSession, answer: object) -> None:
    t = template({"type": "datadog", "address": dd.url, "secretRef": {"name": "dd"}})
    dd.answer(200, answer)
    with pytest.raises(ProviderNoValues, match="no values found"):
        await PROVIDERS["datadog"].query(session, t, "q", dd_secrets(dd), settings())


async def test_datadog_wrong_keys_quote_the_answer_not_the_keys(dd: DatadogFake,
                                                               session: aiohttp.ClientSession) -> None:
    t = template({"type": "datadog", "address": dd.url, "secretRef": {"name": "dd"}})
    wrong = {"datadog_api_key": "wrong-api-key", "datadog_application_key": "wrong-app-key"}
    with pytest.raises(ProviderError) as e:
        await PROVIDERS["datadog"].query(session, t, "q", wrong, settings())
    host = dd.url.removeprefix("http://")
    assert str(e.value) == f'Datadog {host} error response: {{"errors":["Forbidden"]}}: 403 Forbidden'
    with pytest.raises(ProviderError, match="datadog credentials does not contain datadog_application_key"):
        await PROVIDERS["datadog"].query(session, t, "q", {"datadog_api_key": "k"}, settings())


async def test_newrelic_request_and_single_result(nr: NewRelicFake, session: aiohttp.ClientSession) -> None:
    """https://docs.newrelic.com/docs/apis/insights-apis/query-insights-event-data-api/: GET
    /v1/accounts/<id>/query?nrql=…, key in X-Query-Key; Flagger appends ``SINCE <interval s> seconds
    ago`` and reads ``results[0].result`` of exactly one result."""
    t = template({"type": "newrelic", "address": nr.url, "secretRef": {"name": "nr"}})
    secrets = {"newrelic_account_id": nr.account, "newrelic_query_key": nr.key}
    query = "SELECT filter(count(*), WHERE status >= 500) / count(*) * 100 FROM Transaction"
    value = await PROVIDERS["newrelic"].query(session, t, query, secrets, settings(interval_seconds=30))
    assert value == 1.25
    (seen,) = nr.seen
    assert seen.path == f"/v1/accounts/{nr.account}/query" and seen.headers["X-Query-Key"] == nr.key
    assert seen.query == {"nrql": query + " SINCE 30 seconds ago"}
    for answer in ({"results": []}, {"results": [{"result": None}]}, {"results": [{"result": 1}] * 2},
                   {"results": [{"count": 3}]}):
        nr.answer(200, answer)
        with pytest.raises(ProviderNoValues):
            await PROVIDERS["newrelic"].query(session, t, query, secrets, settings())
    with pytest.raises(ProviderError, match="does not contain the key 'newrelic_query_key'"):
        await PROVIDERS["newrelic"].query(session, t, query, {"newrelic_account_id": "1"}, settings())


async def test_dynatrace_request_and_last_series(dt: DynatraceFake, session: aiohttp.ClientSession) -> None:
    """https://docs.dynatrace.com/docs/dynatrace-api/environment-api/metric-v2/get-data-points: GET
    /api/v2/metrics/query with metricSelector, resolution, from/to (ms), ``Authorization: Api-Token``;
    Flagger reads the first value of the *last* series of the first result."""
    t = template({"type": "dynatrace", "address": dt.url, "secretRef": {"name": "dt"}})
    selector = 'builtin:service.errors.total.rate:splitBy("dt.entity.service")'
    token = {"dynatrace_token": dt.token}
    value = await PROVIDERS["dynatrace"].query(session, t, selector, token, settings())
    assert value == 0.5
    (seen,) = dt.seen
    assert seen.path == "/api/v2/metrics/query" and seen.headers["Authorization"] == f"Api-Token {dt.token}"
    now_ms = int(NOW) * 1000
    assert seen.query == {"metricSelector": selector, "resolution": "Inf", "from": str(now_ms - 600_000),
                          "to": str(now_ms)}
    dt.answer(200, {"totalCount": 0, "result": [{"metricId": "m", "data": []}]})
    with pytest.raises(ProviderNoValues):
        await PROVIDERS["dynatrace"].query(session, t, selector, token, settings())
    with pytest.raises(ProviderError) as e:
        await PROVIDERS["dynatrace"].query(session, t, selector, {"dynatrace_token": "dt0c01.wrong"},
                                           settings())
    assert "Token Authentication failed" in str(e.value) and "dt0c01.wrong" not in str(e.value)
    nowhere = template({"type": "dynatrace", "secretRef": {"name": "dt"}})
    with pytest.raises(ProviderError, match=r"^dynatrace endpoint is not set$"):
        await PROVIDERS["dynatrace"].query(session, nowhere, selector, {"dynatrace_token": "x"}, settings())


CW_QUERY = """[
  {"Id": "e1", "Expression": "m1 / m2", "Label": "ErrorRate"},
  {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "MyKubernetesCluster", "MetricName": "ErrorCount",
    "Dimensions": [{"Name": "appName", "Value": "podinfo.test"}]}, "Period": 60, "Stat": "Sum",
    "Unit": "Count"}, "ReturnData": false},
  {"id": "m2", "metricStat": {"metric": {"namespace": "MyKubernetesCluster", "metricName": "RequestCount",
    "dimensions": [{"name": "appName", "value": "podinfo.test"}]}, "period": 60, "stat": "Sum"},
   "returnData": false}
]"""


def cw_env(fake: CloudWatchFake) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": fake.access_key, "AWS_SECRET_ACCESS_KEY": fake.secret_key,
            "AWS_ENDPOINT_URL_CLOUDWATCH": fake.url}


async def test_cloudwatch_signed_get_metric_data(cw: CloudWatchFake, session: aiohttp.ClientSession) -> None:
    """https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html (query
    API: form-encoded POST, ``MetricDataQueries.member.N``, XML answer) signed with SigV4
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html), which the fake
    recomputes with the shared secret; the value is the first value of the first result."""
    t = template({"type": "cloudwatch", "region": "eu-west-1"}, CW_QUERY)
    value = await PROVIDERS["cloudwatch"].query(session, t, CW_QUERY, {}, settings(environ=cw_env(cw)))
    assert value == 0.0421
    form = cw.form()
    assert form["Action"] == "GetMetricData" and form["Version"] == "2010-08-01"
    assert (form["StartTime"], form["EndTime"], form["MaxDatapoints"]) == (
        "2024-01-01T00:00:00Z", "2024-01-01T00:10:00Z", "20")
    assert form["MetricDataQueries.member.1.Expression"] == "m1 / m2"
    assert form["MetricDataQueries.member.2.MetricStat.Metric.Dimensions.member.1.Value"] == "podinfo.test"
    assert form["MetricDataQueries.member.2.ReturnData"] == "false"
    # Go's JSON decoding ignores the case of field names: lower-case members are sent as AWS names them
    assert form["MetricDataQueries.member.3.MetricStat.Metric.MetricName"] == "RequestCount"
    assert form["MetricDataQueries.member.3.MetricStat.Period"] == "60"
    assert cw.seen[-1].headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={cw.access_key}/")


async def test_cloudwatch_wrong_secret_is_refused_by_the_fake(cw: CloudWatchFake,
                                                              session: aiohttp.ClientSession) -> None:
    t = template({"type": "cloudwatch", "region": "eu-west-1"}, CW_QUERY)
    env = {**cw_env(cw), "AWS_SECRET_ACCESS_KEY": "not-the-secret-key"}
    with pytest.raises(ProviderError) as e:
        await PROVIDERS["cloudwatch"].query(session, t, CW_QUERY, {}, settings(environ=env))
    host = cw.url.removeprefix("http://")
    assert str(e.value) == (f"CloudWatch {host}: error requesting cloudwatch: SignatureDoesNotMatch: The "
                            "request signature we calculated does not match the signature you provided. "
                            "(status code: 403)")
    # and the fake does verify: a request signed for another region fails the same way
    creds = Credentials(cw.access_key, cw.secret_key)
    headers = sign(creds, "POST", "/", {"Host": host, "Content-Type": "x"}, b"", region="us-east-1",
                   service="monitoring", amz_date="20240101T000000Z")
    async with session.post(cw.url + "/", headers=headers, data=b"") as resp:
        assert resp.status == 403 and b"SignatureDoesNotMatch" in await resp.read()


async def test_cloudwatch_credentials_file_session_token_and_errors(
        cw: CloudWatchFake, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    """The default chain's shared credentials file (``AWS_SHARED_CREDENTIALS_FILE``, ``AWS_PROFILE``)."""
    path = tmp_path / "credentials"
    path.write_text(f"[default]\naws_access_key_id = nope\naws_secret_access_key = nope\n\n[canary]\n"
                    f"aws_access_key_id = {cw.access_key}\naws_secret_access_key = {cw.secret_key}\n"
                    "aws_session_token = SESSION-token-xyz\n")
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(path), "AWS_PROFILE": "canary",
           "AWS_ENDPOINT_URL_CLOUDWATCH": cw.url}
    t = template({"type": "cloudwatch", "region": "eu-west-1"}, CW_QUERY)
    assert await PROVIDERS["cloudwatch"].query(session, t, CW_QUERY, {}, settings(environ=env)) == 0.0421
    assert cw.seen[-1].headers["X-Amz-Security-Token"] == "SESSION-token-xyz"
    assert "x-amz-security-token" in cw.seen[-1].headers["Authorization"]
    # throttled (400 Throttling, 429, 5xx): retried, as the AWS SDK's default retryer does
    cw.answer(400, aws_error("Throttling", "Rate exceeded"))
    cw.answer(503, aws_error("ServiceUnavailable", "Service is unavailable"))
    calls = len(cw.seen)
    assert await PROVIDERS["cloudwatch"].query(session, t, CW_QUERY, {}, settings(environ=env)) == 0.0421
    assert len(cw.seen) == calls + 3
    # still throttled when the check's budget runs out: AWS's error, and how many attempts were made
    for _ in range(4):
        cw.answer(400, aws_error("Throttling", "Rate exceeded"))
    started = time.monotonic()
    with pytest.raises(ProviderError, match=r"Throttling: Rate exceeded \(status code: 400\) \(gave up "
                                            r"after [234] attempts\)$"):
        await PROVIDERS["cloudwatch"].query(session, t, CW_QUERY, {}, settings(environ=env, budget=1.5))
    assert time.monotonic() - started < 1.5
    cw.queued.clear()
    cw.answer(400, aws_error("ValidationError", "The parameter MetricDataQueries is required."))
    calls = len(cw.seen)
    with pytest.raises(ProviderError, match=r"ValidationError: The parameter .* \(status code: 400\)$"):
        await PROVIDERS["cloudwatch"].query(session, t, CW_QUERY, {}, settings(environ=env))
    assert len(cw.seen) == calls + 1  # not retried
    cw.answer(200, b"<GetMetricDataResponse><GetMetricDataResult><MetricDataResults/></GetMetricDataResult>"
                   b"</GetMetricDataResponse>")
    with pytest.raises(ProviderNoValues):
        await PROVIDERS["cloudwatch"].query(session, t, CW_QUERY, {}, settings(environ=env))
    with pytest.raises(ProviderError, match=r"^region not specified$"):
        await PROVIDERS["cloudwatch"].query(session, template({"type": "cloudwatch"}), CW_QUERY, {},
                                            settings(environ=env))
    with pytest.raises(ProviderError, match=r"^error unmarshaling query"):
        await PROVIDERS["cloudwatch"].query(session, t, "{not json", {}, settings(environ=env))
    with pytest.raises(ProviderError, match="NoCredentialProviders"):
        nothing = {"HOME": str(tmp_path), "AWS_EC2_METADATA_DISABLED": "true"}
        await PROVIDERS["cloudwatch"].query(session, t, CW_QUERY, {}, settings(environ=nothing))


# --- hostile answers: every provider, the same bounds ------------------------------------------------

def _case(kind: str, fake: Fake) -> tuple[Any, dict[str, str], ProviderSettings]:
    if isinstance(fake, DatadogFake):
        return template({"type": "datadog", "address": fake.url}), dd_secrets(fake), settings()
    if isinstance(fake, NewRelicFake):
        return (template({"type": "newrelic", "address": fake.url}),
                {"newrelic_account_id": fake.account, "newrelic_query_key": fake.key}, settings())
    if isinstance(fake, DynatraceFake):
        token = {"dynatrace_token": fake.token}
        return template({"type": "dynatrace", "address": fake.url}), token, settings()
    if isinstance(fake, GoogleFake):
        return (template({"type": "stackdriver", "address": fake.url, "secretRef": {"name": "gcp"}}),
                {"project": fake.project, "serviceAccountKey": fake.key_file()}, settings())
    assert isinstance(fake, CloudWatchFake)
    return (template({"type": "cloudwatch", "region": fake.region}), {},
            settings(environ=cw_env(fake), budget=1.2))  # a throttled call is retried within 1.2 s


FAKES: dict[str, type[Fake]] = {"datadog": DatadogFake, "newrelic": NewRelicFake, "dynatrace": DynatraceFake,
                                "cloudwatch": CloudWatchFake, "stackdriver": GoogleFake}
NAMES = {"datadog": "Datadog", "newrelic": "New Relic", "dynatrace": "Dynatrace", "cloudwatch": "CloudWatch",
         "stackdriver": "Cloud Monitoring"}


@pytest.mark.parametrize("kind", sorted(FAKES))
async def test_hostile_answers_are_bounded_errors_naming_provider_and_host(
        kind: str, session: aiohttp.ClientSession) -> None:
    fake = FAKES[kind]()
    await fake.start()
    try:
        t, secrets, base = _case(kind, fake)
        host = fake.url.removeprefix("http://")
        plugin = PROVIDERS[kind]
        query = CW_QUERY if kind == "cloudwatch" else "q"
        for _ in range(4 if kind == "cloudwatch" else 1):  # CloudWatch retries
            fake.answer(429, b'{"errors":["Rate limit exceeded"]}', {"Retry-After": "7"})
        with pytest.raises(ProviderError) as e:
            await plugin.query(session, t, query, secrets, base)
        assert str(e.value).startswith(f"{NAMES[kind]} {host} rate limited (429, retry after 7s)")
        fake.queued.clear()
        fake.answer(200, b"\x00\x01<html>garbage " + "".join(secrets.values()).encode())
        with pytest.raises(ProviderError) as e:
            await plugin.query(session, t, query, secrets, base)
        assert NAMES[kind] in str(e.value) and all(s not in str(e.value) for s in secrets.values())
        fake.answer(200, b"[" + b"1," * 600_000 + b"1]")
        small = ProviderSettings(**{**base.__dict__, "max_answer_bytes": 100_000})
        too_large = re.escape(f"{NAMES[kind]}: answer from {host} larger than 100000 bytes")
        with pytest.raises(ProviderError, match=f"^{too_large}$"):
            await plugin.query(session, t, query, secrets, small)
        fake.answer(302, b"", {"Location": "http://169.254.169.254/latest?token=x"})
        with pytest.raises(ProviderError, match="not followed"):
            await plugin.query(session, t, query, secrets, base)
        fake.mode = "hang"
        quick = ProviderSettings(**{**base.__dict__, "timeout": 0.3})
        started = time.monotonic()
        hung = re.escape(f"{NAMES[kind]} {host} timed out after 0.3s")  # Google's token is kept by now
        with pytest.raises(ProviderError, match=f"^{hung}$"):
            await plugin.query(session, t, query, secrets, quick)
        assert time.monotonic() - started < 3
    finally:
        await fake.stop()


async def test_a_datadog_template_check_end_to_end(dd: DatadogFake, session: aiohttp.ClientSession) -> None:
    """The MetricTemplate check reads the template and its secret through the lookups, renders the
    query, and compares the Datadog value with the threshold; keys never reach the message."""
    tpl = {"spec": {"provider": {"type": "datadog", "address": dd.url, "secretRef": {"name": "dd-keys"}},
                    "query": "sum:errors{service:{{ target }}}.as_count()"}}

    async def secret(ns: str, name: str) -> dict[str, str] | None:
        return dd_secrets(dd) if (ns, name) == ("test", "dd-keys") else None

    reg = default_registry(lambda ns, name: tpl if (ns, name) == ("test", "errors") else None, secret)
    m = metric("errors", template="errors", hi=50.0, interval="30s")
    (res,) = await run_checks(canary(m), session=session, metrics_server="http://unused.invalid", timeout=5,
                              registry=reg)
    assert (res.verdict, res.value) == ("fail", 99.5)
    assert dd.seen[-1].query["query"] == "sum:errors{service:podinfo}.as_count()"
    assert int(dd.seen[-1].query["to"]) - int(dd.seen[-1].query["from"]) == 300
    dd.answer(403, orjson.dumps({"errors": [f"Forbidden key {dd.api_key}"]}))
    (res,) = await run_checks(canary(m), session=session, metrics_server="http://unused.invalid", timeout=5,
                              registry=reg)
    assert res.verdict == "error" and "Metric query failed for errors: Datadog" in res.message
    assert dd.api_key not in res.message and "<redacted>" in res.message


async def test_a_hung_check_names_the_provider_and_its_default_host(session: aiohttp.ClientSession) -> None:
    """A check cut off at the step's timeout names where it was waiting: the template's address, else
    the provider's default host (or CloudWatch's regional endpoint), never canaryd's Prometheus."""
    providers = {"dd": {"type": "datadog"}, "nr": {"type": "newrelic", "address": "https://nr.example:8443"},
                 "cw": {"type": "cloudwatch", "region": "eu-west-1"}}
    ctx = CheckContext(session=session, metrics_server="http://prom:9090", timeout=5,
                       operator_metrics_server="http://prom:9090")
    texts = {}
    for name, provider in providers.items():
        tpl = {"spec": {"provider": provider, "query": "q"}}
        m = metric(name, template=name, hi=1)
        check = MetricTemplateCheck(spec=canary(m), metric=m, ctx=ctx, templates=lambda ns, n, t=tpl: t,
                                    secrets=None)
        texts[name] = check.timed_out(5).message
    assert texts == {
        "dd": "Metric query failed for dd: datadog https://api.datadoghq.com timed out after 5s",
        "nr": "Metric query failed for nr: newrelic https://nr.example:8443 timed out after 5s",
        "cw": "Metric query failed for cw: cloudwatch https://monitoring.eu-west-1.amazonaws.com/ timed out "
              "after 5s",
    }
