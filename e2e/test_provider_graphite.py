"""A Graphite MetricTemplate as a Canary's only metric source, against a real carbon-cache and
graphite-web (Debian's packages, a bed extra fed with the mesh's request rates): good traffic promotes,
``/status/500`` rolls back. The template sends Flagger's secret keys (``username``, ``password``) as
Basic auth; the bed's graphite-web does not check them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from canaryd.kube.client import KubeClient
from e2e.bed.metricstores import Feeder, Graphite
from e2e.metricstore_run import assert_promoted, assert_rolled_back, run, started, store_value
from e2e.operator import Operator

# the canary workload's share of 5xx answers (percent), per second; the last non-null point is taken
QUERY = """target=asPercent(mesh.{{ namespace }}.{{ target }}.errors, mesh.{{ namespace }}.{{ target }}.total)
&from=-{{ interval }}"""
CREDENTIALS = {"username": "e2e", "password": "not-checked"}


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client(user_agent="e2e-graphite")
    yield client
    await client.close()


@pytest.fixture
async def graphite(tmp_path: Path) -> AsyncIterator[Graphite]:
    async for store in started(Graphite(tmp_path / "graphite")):
        yield store


@pytest.mark.parametrize(("path", "outcome"), [("/", "promoted"), ("/status/500", "rolled back")])
async def test_graphite_template_drives_the_run(bed: Any, namespace: str, admin: KubeClient,
                                                operator: Operator, graphite: Graphite, path: str,
                                                outcome: str) -> None:
    feeder = Feeder(str(bed.prometheus_url), namespace, graphite=graphite)
    st, texts = await run(bed, namespace, admin, feeder, {"type": "graphite", "address": graphite.url}, QUERY,
                          CREDENTIALS, path)
    # the canary's traffic reached the store (a series without points would be "no values")
    seen = f"target=mesh.{namespace}.podinfo.total&from=-10min"
    assert await store_value(graphite.url, "graphite", seen) > 0
    if outcome == "promoted":
        await assert_promoted(admin, namespace, st, texts)
    else:
        await assert_rolled_back(admin, namespace, st, texts)
