"""A Splunk (``splunk``) MetricTemplate as a Canary's only metric source, against a loopback SignalFlow
WebSocket server (tests/analysis/providers/signalflow.py) that plays Splunk Observability Cloud: it
checks the token and the rendered program, and answers each ``execute`` with the canary workload's live
5xx percentage, read from the bed's Prometheus (what Splunk would compute from the same traffic). Good
traffic promotes, ``/status/500`` rolls back; the token never reaches status or Events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from canaryd.kube.client import KubeClient
from e2e.bed.metricstores import Feeder
from e2e.metricstore_run import assert_promoted, assert_rolled_back, run
from e2e.operator import Operator
from tests.analysis.providers.signalflow import DOUBLE, Frame, SignalFlowFake, control, data, error

PROGRAM = ("A = data('istio_requests_total', filter=filter('namespace', '{{ namespace }}') and "
           "filter('destination_workload', '{{ target }}'))\n"
           "(A.filter(filter('response_code', '5*')).sum() / A.sum() * 100).publish()")


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client(user_agent="e2e-splunk")
    yield client
    await client.close()


async def _rate(session: aiohttp.ClientSession, prometheus: str, ns: str, errors: bool) -> float:
    code = ', response_code=~"5.*"' if errors else ""
    query = (f'sum(rate(istio_requests_total{{reporter="destination", destination_workload_namespace="{ns}", '
             f'destination_workload="podinfo"{code}}}[5s]))')
    async with session.get(f"{prometheus}/api/v1/query", params={"query": query}) as resp:
        result = (await resp.json())["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


@pytest.fixture
async def splunk(bed: Any, namespace: str) -> AsyncIterator[SignalFlowFake]:
    fake = SignalFlowFake(token="e2e-SF-token-5f3a9c")
    prometheus = str(bed.prometheus_url)

    async def execute(doc: dict[str, Any]) -> list[Frame]:
        program = str(doc.get("program"))
        if f"filter('namespace', '{namespace}')" not in program or "'podinfo'" not in program:
            return [error(400, "ANALYTICS_PROGRAM_ERROR", f"unexpected program: {program[:80]}")]
        async with aiohttp.ClientSession(trust_env=False) as session:
            total = await _rate(session, prometheus, namespace, False)
            errors = await _rate(session, prometheus, namespace, True)
        points = [data([(DOUBLE, 42, 100.0 * errors / total)])] if total else []
        return [control("STREAM_START"), *points, control("END_OF_CHANNEL")]

    fake.on_execute = execute
    await fake.start()
    yield fake
    await fake.stop()


@pytest.mark.parametrize(("path", "outcome"), [("/", "promoted"), ("/status/500", "rolled back")])
async def test_splunk_template_drives_the_run(bed: Any, namespace: str, admin: KubeClient, operator: Operator,
                                              splunk: SignalFlowFake, path: str, outcome: str) -> None:
    feeder = Feeder(str(bed.prometheus_url), namespace)  # no store: the fake reads Prometheus itself
    st, texts = await run(bed, namespace, admin, feeder, {"type": "splunk", "address": splunk.url}, PROGRAM,
                          {"sf_token_key": splunk.token}, path)
    executed = splunk.of_type("execute")
    assert executed and all(m["program"] == executed[0]["program"] for m in executed)
    assert splunk.of_type("authenticate")[0]["token"] == splunk.token
    assert all(splunk.token not in m for m in texts) and splunk.token not in str(st)
    if outcome == "promoted":
        await assert_promoted(admin, namespace, st, texts)
    else:
        await assert_rolled_back(admin, namespace, st, texts)
