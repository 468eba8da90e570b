"""InfluxDB and Graphite templates through the check layer (canaryd.analysis.templates): the secret read
from the template's namespace and handed to the provider, the verdicts and Flagger's texts; and the
up-front secret-key rule for these two providers (secretRef optional, but complete when given)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson
import pytest

from canaryd.analysis.checks import default_registry, run_checks
from canaryd.engine.types import CheckResult
from canaryd.model.providers import missing_secret_key, parse_metric_template

from ..specs import canary, metric
from .loopback import Loopback
from .test_influxdb import csv_answer


@pytest.fixture
async def server() -> AsyncIterator[Loopback]:
    s = await Loopback().start()
    yield s
    await s.stop()


async def check(session: aiohttp.ClientSession, provider: dict[str, Any], query: str,
                secrets: Mapping[str, Mapping[str, str]], hi: float = 5) -> CheckResult:
    tpl = {"spec": {"provider": provider, "query": query}}

    async def secret(ns: str, name: str) -> Mapping[str, str] | None:
        return secrets.get(f"{ns}/{name}")

    reg = default_registry(lambda ns, name: tpl if (ns, name) == ("test", "store") else None, secret)
    m = metric("errors", hi=hi, template="store")
    (r,) = await run_checks(canary(m), session=session, metrics_server="http://unused.invalid", timeout=5,
                            registry=reg)
    return r


async def test_influxdb_pass_and_fail(session: aiohttp.ClientSession, server: Loopback) -> None:
    provider = {"type": "influxdb", "address": server.url, "secretRef": {"name": "influx"}}
    creds = {"test/influx": {"token": "tok-abcdef", "org": "o"}}
    server.answer(200, csv_answer("1.5"))
    server.answer(200, csv_answer("42"))
    ok = await check(session, provider, 'from(bucket: "{{ namespace }}")', creds)
    bad = await check(session, provider, "q", creds)
    assert (ok.verdict, ok.value) == ("pass", 1.5)
    assert (bad.verdict, bad.message) == ("fail", "errors 42.00 > 5")
    assert orjson.loads(server.seen[0].body)["query"] == 'from(bucket: "test")'
    assert server.seen[0].headers["Authorization"] == "Token tok-abcdef"


async def test_graphite_no_values_and_secret_texts(session: aiohttp.ClientSession, server: Loopback) -> None:
    provider = {"type": "graphite", "address": server.url, "secretRef": {"name": "gr"}}
    server.answer(200, orjson.dumps([{"target": "x", "datapoints": [[None, 1]]}]))
    r = await check(session, provider, "target=x", {"test/gr": {"username": "u", "password": "p"}})
    assert (r.verdict, r.message) == ("nodata", "Halt advancement no values found for custom metric: errors: "
                                                "no values found")
    missing = await check(session, provider, "target=x", {})
    assert missing.message == 'Metric template store.test secret gr error: secrets "gr" not found'
    partial = await check(session, provider, "target=x", {"test/gr": {"username": "u"}})
    assert partial.message == ("Metric query failed for errors: graphite credentials does not contain a "
                               "password")
    assert len(server.seen) == 1


@pytest.mark.parametrize(("provider", "keys", "expected"), [
    ({"type": "influxdb", "address": "http://i"}, None, None),  # no secretRef: no credentials, fine
    ({"type": "graphite", "address": "http://g"}, None, None),
    ({"type": "influxdb", "address": "http://i", "secretRef": {"name": "s"}}, frozenset({"token"}),
     "metric m: MetricTemplate ns/t (provider influxdb): secret s does not contain org"),
    ({"type": "graphite", "address": "http://g", "secretRef": {"name": "s"}}, frozenset(),
     "metric m: MetricTemplate ns/t (provider graphite): secret s does not contain username, password"),
    ({"type": "graphite", "address": "http://g", "secretRef": {"name": "s"}},
     frozenset({"username", "password"}), None),
])
def test_secret_keys_up_front(provider: dict[str, Any], keys: frozenset[str] | None,
                              expected: str | None) -> None:
    tpl = parse_metric_template({"spec": {"provider": provider, "query": "q"}})
    assert missing_secret_key("m", "ns", "t", tpl.provider, keys) == expected


def test_secret_keys_checked_on_the_cached_secret() -> None:
    """The watch cache keeps a Secret's key names, never its values: enough for the up-front rule."""
    from canaryd.cache.slim import slim
    from canaryd.model.template_refs import template_problem

    full = {"metadata": {"name": "s", "namespace": "test"}, "data": {"token": "dG9r", "org": "bw=="}}
    cached = slim("Secret", full)
    assert cached["dataKeys"] == ["org", "token"] and "dG9r" not in repr(cached)
    tpl = {"spec": {"provider": {"type": "influxdb", "address": "http://i", "secretRef": {"name": "s"}},
                    "query": "q"}}
    spec = canary(metric("errors", hi=5, template="store"))
    found = {("test", "store"): tpl}
    assert template_problem(spec, lambda ns, n: found.get((ns, n)), lambda ns, n: cached) is None
    partial = slim("Secret", {**full, "data": {"token": "dG9r"}})
    assert template_problem(spec, lambda ns, n: found.get((ns, n)), lambda ns, n: partial) == (
        "metric errors: MetricTemplate test/store (provider influxdb): secret s does not contain org")
