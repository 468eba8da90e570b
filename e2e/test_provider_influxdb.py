"""An InfluxDB MetricTemplate as a Canary's only metric source, against a real InfluxDB 1.8 with Flux
(a bed extra, fed with the mesh's request rates): good traffic promotes, ``/status/500`` rolls back.
The template sends Flagger's secret keys (``token``, ``org``); the bed's InfluxDB has auth off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from canaryd.kube.client import KubeClient
from e2e.bed.metricstores import Feeder, InfluxDB
from e2e.metricstore_run import assert_promoted, assert_rolled_back, run, started, store_value
from e2e.operator import Operator

# the canary workload's share of 5xx answers (percent) over the metric's interval
FLUX = """data = from(bucket: "canaryd/autogen")
  |> range(start: -{{ interval }})
  |> filter(fn: (r) => r._measurement == "requests" and r.namespace == "{{ namespace }}"
                       and r.workload == "{{ target }}")
  |> group(columns: ["_field"])
  |> sum()
errors = data |> filter(fn: (r) => r._field == "errors")
total = data |> filter(fn: (r) => r._field == "total")
join(tables: {e: errors, t: total}, on: ["_start"])
  |> map(fn: (r) => ({_value: 100.0 * r._value_e / r._value_t}))
"""
CREDENTIALS = {"token": "e2e:not-checked", "org": "canaryd"}


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client(user_agent="e2e-influxdb")
    yield client
    await client.close()


@pytest.fixture
async def influxdb(tmp_path: Path) -> AsyncIterator[InfluxDB]:
    async for store in started(InfluxDB(tmp_path / "influxdb")):
        yield store


@pytest.mark.parametrize(("path", "outcome"), [("/", "promoted"), ("/status/500", "rolled back")])
async def test_influxdb_template_drives_the_run(bed: Any, namespace: str, admin: KubeClient,
                                                operator: Operator, influxdb: InfluxDB, path: str,
                                                outcome: str) -> None:
    feeder = Feeder(str(bed.prometheus_url), namespace, influxdb=influxdb)
    st, texts = await run(bed, namespace, admin, feeder, {"type": "influxdb", "address": influxdb.url}, FLUX,
                          CREDENTIALS, path)
    # the canary's traffic reached the store: the template read real rows (an empty answer reads as 0)
    seen = (f'from(bucket: "canaryd/autogen") |> range(start: -10m) |> filter(fn: (r) => '
            f'r._measurement == "requests" and r.namespace == "{namespace}" and r.workload == "podinfo" '
            'and r._field == "total") |> max()')
    assert await store_value(influxdb.url, "influxdb", seen) > 0
    if outcome == "promoted":
        await assert_promoted(admin, namespace, st, texts)
    else:
        await assert_rolled_back(admin, namespace, st, texts)
