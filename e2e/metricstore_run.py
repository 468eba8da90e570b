"""A tutorial-style run whose only metric is a MetricTemplate of a non-Prometheus provider (InfluxDB,
Graphite): the store runs as a bed extra (:mod:`e2e.bed.metricstores`), fed every second with the
namespace's request rates; good traffic promotes, ``/status/500`` traffic rolls back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from canaryd.analysis.providers import PROVIDERS, ProviderSettings
from canaryd.kube.client import KubeClient
from canaryd.kube.resources import DEPLOYMENT, SECRET
from canaryd.model.providers import parse_metric_template
from e2e.bed.metricstores import Feeder
from e2e.bed.waiting import wait_for
from e2e.canaries import canary, podinfo, set_image
from e2e.tutorial import IMAGE, canary_events, canary_traffic, forbidden, primary_image, wait_status

THRESHOLD = 3
METRIC = "error-rate"


def template(ns: str, provider: dict[str, Any], query: str) -> dict[str, Any]:
    return {"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
            "metadata": {"name": METRIC, "namespace": ns}, "spec": {"provider": provider, "query": query}}


def secret(ns: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "store-credentials", "namespace": ns},
            "stringData": data}


async def run(bed: Any, ns: str, admin: KubeClient, feeder: Feeder, provider: dict[str, Any], query: str,
              credentials: dict[str, str], path: str) -> tuple[dict[str, Any], list[str]]:
    """Initialise podinfo with the template as its only metric, start a run of a new image under
    ``path`` traffic; the final status and the Canary's Event messages."""
    await admin.create(SECRET, ns, secret(ns, credentials))
    bed.apply(template(ns, {**provider, "secretRef": {"name": "store-credentials"}}, query), ns)
    await admin.create(DEPLOYMENT, ns, podinfo(ns))
    metrics = [{"name": METRIC, "templateRef": {"name": METRIC}, "thresholdRange": {"max": 5},
                "interval": "10s"}]
    bed.apply(canary(ns, metrics=metrics, interval="2s", threshold=THRESHOLD, stepWeight=5), ns)
    await wait_status(admin, ns, "podinfo", "Initialized", lambda s: s.get("phase") == "Initialized")
    feeder.start()
    try:
        async with canary_traffic(str(bed.mesh_url), ns, path):
            await set_image(admin, ns, "6.0.1")
            st = await wait_status(admin, ns, "podinfo", "a final phase",
                                   lambda s: s.get("phase") in ("Succeeded", "Failed"), 180)
    finally:
        await feeder.stop()
    key = f"podinfo.{ns}"
    final = "Promotion completed!" if st.get("phase") == "Succeeded" else "Canary failed!"

    async def events() -> list[str] | None:
        got = [str(e.get("message")) for e in await canary_events(admin, ns)]
        return got if any(m.startswith(f"{final} Scaling down {key}") for m in got) else None

    texts: list[str] = await wait_for(events, 20, "the final Events")
    assert forbidden(bed, ns) == []
    return st, texts


async def assert_promoted(admin: KubeClient, ns: str, st: dict[str, Any], texts: list[str]) -> None:
    assert st.get("phase") == "Succeeded", (st.get("message"), texts)
    assert await primary_image(admin, ns) == f"{IMAGE}:6.0.1"
    assert not [m for m in texts if m.startswith("Metric query failed")], texts


async def assert_rolled_back(admin: KubeClient, ns: str, st: dict[str, Any], texts: list[str]) -> None:
    """Failed on the template's metric: ``Halt podinfo.<ns> advancement error-rate <v> > 5`` Events."""
    assert st.get("phase") == "Failed", (st.get("message"), texts)
    prefix = f"Halt podinfo.{ns} advancement {METRIC} "
    halts = [m for m in texts if m.startswith(prefix) and m.endswith("> 5")]
    assert halts, texts
    assert f"Rolling back podinfo.{ns} failed checks threshold reached {THRESHOLD}" in texts
    assert await primary_image(admin, ns) == f"{IMAGE}:6.0.0"


async def store_value(address: str, provider_type: str, query: str) -> float:
    """``query`` run by canaryd's own provider client against the store, without credentials."""
    template = parse_metric_template({"spec": {"provider": {"type": provider_type, "address": address},
                                               "query": query}})
    async with aiohttp.ClientSession() as session:
        settings = ProviderSettings(timeout=10)
        return await PROVIDERS[provider_type].query(session, template, query, {}, settings)


async def started(store: Any) -> AsyncIterator[Any]:
    """A fixture body: ``store`` started for the test, stopped after it."""
    store.start()
    try:
        yield store
    finally:
        store.stop()
