"""The ``keptn`` provider: Keptn's metrics API objects, read and written through canaryd's own API-server
client (:mod:`canaryd.kube.client`), so canaryd's RBAC decides what a template may reach (docs/providers.md,
"Keptn").

A query is ``<keptnmetric|analysis>/<namespace>/<name>[/<timeframe>[/<k=v;k=v>]]``, lower-cased as
Flagger v1.44 does. ``keptnmetric`` reads a KeptnMetric's ``.status.value`` (a decimal string);
``analysis`` creates an Analysis of AnalysisDefinition ``<name>`` over the last ``<timeframe>`` (default
``1m``), waits for Keptn's controller to complete it (at most 10 s), reads 1 for a pass and 0 for a
failure, and deletes it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from canaryd.analysis.bounded import excerpt
from canaryd.analysis.providers.protocol import ProviderError, ProviderSettings, check_namespace
from canaryd.kube.client import KubeClient
from canaryd.kube.errors import ApiError
from canaryd.kube.resources import KEPTN_ANALYSIS, KEPTN_METRIC
from canaryd.model.providers import MetricProvider, MetricTemplate

ANALYSIS_TIMEOUT = 10.0  # seconds from create to a completed status, as Flagger
POLL_EVERY = 0.5  # seconds between reads of the Analysis (Flagger: 1 s)
FORMAT = "<keptnmetric|analysis>/<namespace>/<resourceName>/<duration>/<arguments>"
# what Go's strconv.ParseFloat reads: decimal or hex floats, inf/infinity/nan; no spaces, no "_"
_GO_FLOAT = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0[xX][0-9a-fA-F.]+[pP][+-]?\d+"
                       r"|inf|infinity|nan)", re.IGNORECASE)


@dataclass(frozen=True)
class KeptnQuery:
    """A parsed query: ``kind`` is ``keptnmetric`` or ``analysis``; ``timeframe`` and ``args`` are for an
    analysis only."""

    kind: str
    namespace: str
    name: str
    timeframe: str = ""
    args: Mapping[str, str] = field(default_factory=dict)


def parse_query(query: str) -> KeptnQuery:
    """Flagger's reading: lower-case, one trailing newline and surrounding spaces dropped, split on
    ``/``; an analysis without a timeframe gets ``1m``; arguments are ``;``-separated ``key=value``
    pairs (others are skipped)."""
    text = query.lower()
    text = text.removesuffix("\n").strip()
    parts = text.split("/")
    if len(parts) < 3:
        raise ProviderError(f"unexpected query format. query must be in the format {FORMAT}")
    kind = {"keptnmetric": "keptnmetric", "keptnmetrics": "keptnmetric",
            "analysis": "analysis", "analyses": "analysis"}.get(parts[0])
    if kind is None:
        raise ProviderError("unexpected resource kind provided in the query. must be one of: "
                            "['keptnmetric', 'analysis']")
    if kind == "keptnmetric":
        return KeptnQuery(kind, parts[1], parts[2])
    args: dict[str, str] = {}
    if len(parts) >= 5:
        for pair in parts[4].split(";"):
            kv = pair.split("=")
            if len(kv) == 2:
                args[kv[0]] = kv[1]
    return KeptnQuery(kind, parts[1], parts[2], parts[3] if len(parts) >= 4 else "1m", args)


def metric_value(obj: Mapping[str, Any], where: str) -> float:
    """``.status.value`` of a KeptnMetric: a string Go's ParseFloat reads; anything else is an error."""
    status = obj.get("status")
    value = status.get("value") if isinstance(status, dict) else None
    if not isinstance(value, str):
        raise ProviderError(f"could not retrieve KeptnMetric - no value found in resource {where}")
    if _GO_FLOAT.fullmatch(value) is None:
        raise ProviderError(f"could not parse value of KeptnMetric {where} to float: "
                            f"strconv.ParseFloat: parsing {excerpt(value, limit=60)!r}: invalid syntax")
    try:
        return float(value)
    except ValueError:  # a hex float
        return float.fromhex(value)


def analysis_result(obj: Mapping[str, Any], where: str) -> float | None:
    """1 (passed) or 0 (failed) once ``status.state`` is ``Completed`` and ``status.pass`` is set; None
    while the controller is not done. A field of the wrong type is an error, as in Flagger."""
    status = obj.get("status")
    if status is None:
        return None
    problem = f"could not check status of created Keptn Analysis {where}"
    if not isinstance(status, dict):
        raise ProviderError(f"{problem}: .status is of the type {type(status).__name__}, expected map")
    state = status.get("state")
    if state is None:
        return None
    if not isinstance(state, str):
        raise ProviderError(f"{problem}: .status.state accessor error: {excerpt(repr(state), limit=40)} "
                            f"is of the type {type(state).__name__}, expected string")
    if state != "Completed" or "pass" not in status:
        return None
    passed = status["pass"]
    if not isinstance(passed, bool):
        raise ProviderError(f"{problem}: .status.pass accessor error: {excerpt(repr(passed), limit=40)} "
                            f"is of the type {type(passed).__name__}, expected bool")
    return 1.0 if passed else 0.0


def analysis_object(q: KeptnQuery) -> dict[str, Any]:
    """The Analysis Flagger creates: ``<definition>-<6 hex>``, the timeframe as ``recent``."""
    return {
        "apiVersion": KEPTN_ANALYSIS.api_version,
        "kind": KEPTN_ANALYSIS.kind,
        "metadata": {"name": f"{q.name}-{uuid.uuid4().hex[:6]}", "namespace": q.namespace},
        "spec": {"analysisDefinition": {"name": q.name}, "timeframe": {"recent": q.timeframe},
                 "args": dict(q.args)},
    }


def _api_text(e: ApiError) -> str:
    return excerpt(e.message or str(e), limit=200)


@dataclass(frozen=True)
class KeptnProvider:
    """Stateless; every request goes through the client in ``settings.kube``."""

    analysis_timeout: float = ANALYSIS_TIMEOUT
    poll_every: float = POLL_EVERY

    def address_of(self, provider: MetricProvider) -> str:
        """Nothing to name: Keptn's objects live in the cluster canaryd runs against."""
        return ""

    async def query(self, session: aiohttp.ClientSession, template: MetricTemplate, rendered_query: str,
                    secrets: Mapping[str, str], settings: ProviderSettings) -> float:
        if settings.kube is None:
            raise ProviderError("keptn: no Kubernetes client configured")
        q = parse_query(rendered_query)
        check_namespace("keptn", q.namespace, settings)
        if q.kind == "keptnmetric":
            return await self._metric(settings.kube, q)
        return await self._analysis(settings.kube, q)

    @staticmethod
    async def _metric(kube: KubeClient, q: KeptnQuery) -> float:
        where = f"{q.namespace}/{q.name}"
        try:
            obj = await kube.get(KEPTN_METRIC, q.namespace, q.name)
        except ApiError as e:
            raise ProviderError(f"could not retrieve KeptnMetric {where}: {_api_text(e)}") from None
        return metric_value(obj, where)

    async def _analysis(self, kube: KubeClient, q: KeptnQuery) -> float:
        where = f"{q.namespace}/{q.name}"
        body = analysis_object(q)
        created = ""
        try:
            async with asyncio.timeout(self.analysis_timeout):
                try:
                    await kube.create(KEPTN_ANALYSIS, q.namespace, body)
                except ApiError as e:
                    raise ProviderError(f"could not create Keptn Analysis {where}: {_api_text(e)}") from None
                created = body["metadata"]["name"]
                while True:
                    await asyncio.sleep(self.poll_every)
                    try:
                        obj = await kube.get(KEPTN_ANALYSIS, q.namespace, created)
                    except ApiError as e:
                        raise ProviderError(f"could not check status of created Keptn Analysis {where}: "
                                            f"{_api_text(e)}") from None
                    result = analysis_result(obj, where)
                    if result is not None:
                        return result
        except TimeoutError:
            raise ProviderError(f"encountered timeout while waiting for Keptn Analysis {where} "
                                "to be finished") from None
        finally:
            if created:
                await _delete(kube, q.namespace, created)


async def _delete(kube: KubeClient, namespace: str, name: str) -> None:
    """Removes the Analysis this query created, even when the check is being cancelled (its time is up):
    the delete runs on in a task of its own, so no Analysis is left behind."""
    task = asyncio.get_running_loop().create_task(kube.delete(KEPTN_ANALYSIS, namespace, name))
    task.add_done_callback(_settled)
    with contextlib.suppress(ApiError, aiohttp.ClientError, TimeoutError):
        await asyncio.shield(task)  # a cancellation propagates; the delete goes on


def _settled(task: asyncio.Task[None]) -> None:
    """A failed delete is not worth more than the query's result (Flagger logs it and moves on)."""
    if not task.cancelled():
        task.exception()
