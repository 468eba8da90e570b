"""MetricTemplates of type ``keptn`` driving a run on the bed's real API server, under canaryd's own
ServiceAccount (no 403, so the ClusterRole holds what Keptn needs): a ``keptnmetric/…`` query reads the
KeptnMetric the test writes, an ``analysis/…`` query creates an Analysis that the test, playing Keptn's
controller, completes as passed or failed. A pass promotes; a failed Analysis rolls back. Every Analysis
canaryd created is gone again at the end (it deletes what it made).

The bed serves stand-ins of Keptn's two CRDs (e2e/bed/keptn-crds.yaml)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from canaryd.kube.client import KubeClient
from canaryd.kube.errors import ApiError
from canaryd.kube.resources import DEPLOYMENT, KEPTN_ANALYSIS, KEPTN_METRIC
from e2e.bed.waiting import wait_for
from e2e.canaries import canary, podinfo, set_image
from e2e.tutorial import IMAGE, canary_events, forbidden, primary_image, wait_status

THRESHOLD = 2


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client(user_agent="e2e-keptn")
    yield client
    await client.close()


def template(ns: str, name: str, query: str) -> dict[str, Any]:
    return {"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"provider": {"type": "keptn"}, "query": query}}


class FakeKeptn:
    """Keptn's controller for the Analyses of one namespace: completes each new one with ``passed``,
    keeping the spec canaryd sent."""

    def __init__(self, client: KubeClient, ns: str, passed: bool) -> None:
        self.client, self.ns, self.passed = client, ns, passed
        self.seen: dict[str, dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    async def _complete(self, name: str) -> None:
        with contextlib.suppress(ApiError):  # canaryd may have deleted it already (its time ran out)
            await self.client.patch(KEPTN_ANALYSIS, self.ns, name,
                                    {"status": {"state": "Completed", "pass": self.passed}},
                                    subresource="status")

    async def _run(self) -> None:
        version = ""
        while True:
            try:
                async for kind, obj in self.client.watch(KEPTN_ANALYSIS, self.ns, version or None,
                                                         timeout_seconds=30):
                    version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                    name = str((obj.get("metadata") or {}).get("name") or "")
                    if kind == "ADDED" and name not in self.seen:
                        self.seen[name] = dict(obj.get("spec") or {})
                        await self._complete(name)
            except (ApiError, aiohttp.ClientError, TimeoutError):
                version = ""  # watch again from now: objects already seen are skipped
                await asyncio.sleep(0.2)  # not a wait for a condition: a pause before reconnecting

    def __enter__(self) -> FakeKeptn:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


@pytest.mark.parametrize(("passed", "outcome"), [(True, "promoted"), (False, "rolled back")])
async def test_keptn_templates_drive_the_run(bed: Any, namespace: str, admin: KubeClient, operator: Any,
                                             passed: bool, outcome: str) -> None:
    ns = namespace
    await admin.create(KEPTN_METRIC, ns, {
        "apiVersion": KEPTN_METRIC.api_version, "kind": "KeptnMetric",
        "metadata": {"name": "error-rate", "namespace": ns},
        "spec": {"fetchIntervalSeconds": 5, "provider": {"name": "prometheus"}, "query": "sum(errors)"}})
    await admin.patch(KEPTN_METRIC, ns, "error-rate", {"status": {"value": "0.5"}}, subresource="status")
    bed.apply(template(ns, "keptn-errors", "keptnmetric/{{ namespace }}/error-rate"), ns)
    # upper case, as users write it: Flagger lower-cases the whole query, arguments included
    query = "analysis/{{ namespace }}/SLO/30s/workload={{ target }};Tier=Web"
    bed.apply(template(ns, "keptn-slo", query), ns)
    await admin.create(DEPLOYMENT, ns, podinfo(ns))
    metrics = [{"name": "errors", "templateRef": {"name": "keptn-errors"}, "thresholdRange": {"max": 5}},
               {"name": "slo", "templateRef": {"name": "keptn-slo"}, "thresholdRange": {"min": 1}}]
    bed.apply(canary(ns, metrics=metrics, interval="3s", threshold=THRESHOLD, stepWeight=25), ns)
    await wait_status(admin, ns, "podinfo", "Initialized", lambda s: s.get("phase") == "Initialized")
    with FakeKeptn(admin, ns, passed) as keptn:
        await set_image(admin, ns, "6.0.1")
        st = await wait_status(admin, ns, "podinfo", "a final phase",
                               lambda s: s.get("phase") in ("Succeeded", "Failed"), 180)
    key = f"podinfo.{ns}"
    final = "Promotion completed!" if st.get("phase") == "Succeeded" else "Canary failed!"

    async def events() -> list[str] | None:
        got = [str(e.get("message")) for e in await canary_events(admin, ns)]
        return got if any(m.startswith(f"{final} Scaling down {key}") for m in got) else None

    texts: list[str] = await wait_for(events, 20, "the final Events")
    assert forbidden(bed, ns) == []
    # what canaryd asked of Keptn: the definition, the timeframe and the arguments, lower-cased
    assert keptn.seen, "canaryd created no Analysis"
    for name, spec in keptn.seen.items():
        assert name.startswith("slo-") and len(name) == len("slo-") + 6, name
        assert spec == {"analysisDefinition": {"name": "slo"}, "timeframe": {"recent": "30s"},
                        "args": {"workload": "podinfo", "tier": "web"}}, spec

    async def cleaned_up() -> bool:
        items, _ = await admin.list(KEPTN_ANALYSIS, ns)
        return not items

    await wait_for(cleaned_up, 20, "every Analysis deleted by canaryd")
    assert not [m for m in texts if m.startswith("Metric query failed")], texts
    if outcome == "promoted":
        assert st.get("phase") == "Succeeded", (st.get("message"), texts)
        assert await primary_image(admin, ns) == f"{IMAGE}:6.0.1"
    else:
        assert st.get("phase") == "Failed", (st.get("message"), texts)
        assert f"Halt {key} advancement slo 0.00 < 1" in texts, texts
        assert f"Rolling back {key} failed checks threshold reached {THRESHOLD}" in texts
        assert await primary_image(admin, ns) == f"{IMAGE}:6.0.0"
