"""Running the metric checks of one analysis step: all at once, each bounded by a timeout, results in
the Canary's list order (the engine reports the first failure in that order).

Which check serves which metric is decided by a :class:`CheckRegistry` built at start-up (builtin
Istio checks, inline queries, MetricTemplates…), so new kinds plug in without touching this module.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace

import aiohttp

from canaryd.analysis.base import Check, CheckContext, CheckFactory, error_result
from canaryd.analysis.bounded import METRICS_ANSWER_LIMIT
from canaryd.analysis.builtin import inline_query_factory, istio_builtin_factory
from canaryd.analysis.judge_check import KIND, judge_check
from canaryd.analysis.templates import SecretLookup, TemplateLookup, metric_template_factory
from canaryd.engine.types import CheckResult
from canaryd.kube.client import KubeClient
from canaryd.model.spec import CanarySpec, MetricSpec


@dataclass(frozen=True)
class _Unsupported:
    """A metric no factory handles; reported as an error result rather than silently skipped."""

    name: str
    message: str

    async def run(self) -> CheckResult:
        return error_result(self.name, self.message)

    def timed_out(self, seconds: float) -> CheckResult:
        return error_result(self.name, self.message)


def _template_factory(spec: CanarySpec, metric: MetricSpec, ctx: CheckContext) -> Check | None:
    if metric.template_ref is None:
        return None
    return _Unsupported(metric.name, "MetricTemplate checks are not supported yet (no template lookup)")


@dataclass(frozen=True)
class CheckRegistry:
    """An immutable, ordered list of factories: the first that accepts a metric builds its check."""

    factories: tuple[CheckFactory, ...]

    def build(self, spec: CanarySpec, metric: MetricSpec, ctx: CheckContext) -> Check:
        for factory in self.factories:
            check = factory(spec, metric, ctx)
            if check is not None:
                return check
        return _Unsupported(metric.name, f"Metric query failed for {metric.name}: no usable metrics "
                                         "template and query were configured")


def default_registry(
    templates: TemplateLookup | None = None, secrets: SecretLookup | None = None,
    kube: KubeClient | None = None,
) -> CheckRegistry:
    """Builtins by name first (as Flagger), then inline queries, then MetricTemplates (read through
    ``templates``, e.g. the watch cache, and ``secrets``; without a lookup they are reported as not
    supported); ``kube`` serves the providers that read Kubernetes APIs (keptn, externalmetrics)."""
    template = (metric_template_factory(templates, secrets, kube) if templates is not None
                else _template_factory)
    return CheckRegistry((istio_builtin_factory, inline_query_factory, template))


async def _bounded(check: Check, seconds: float) -> CheckResult:
    try:
        async with asyncio.timeout(seconds):
            return await check.run()
    except TimeoutError:
        return check.timed_out(seconds)
    except Exception as e:  # a bug in one check must not take the others (or the task) down
        return error_result(check.name, f"check {check.name} failed unexpectedly: {type(e).__name__}: {e}")


async def run_checks(
    spec: CanarySpec,
    *,
    session: aiohttp.ClientSession,
    metrics_server: str,
    timeout: float,  # noqa: ASYNC109 (the contract's name; applied per check, not to the whole call)
    registry: CheckRegistry | None = None,
    metrics: Sequence[MetricSpec] | None = None,
    max_answer_bytes: int = METRICS_ANSWER_LIMIT,
    run_started_at: float | None = None,
) -> tuple[CheckResult, ...]:
    """Run the step's checks concurrently; one result per metric, in list order, then the judge's
    (``kind="judge"``) when the Canary has ``analysis.judge`` and ``metrics`` is not given.

    ``metrics_server`` is canaryd's global server; the Canary's ``metricsServer`` wins when set, except
    for MetricTemplates, which use their own ``address`` or else only the global server.
    ``metrics`` defaults to ``spec.analysis.metrics``. ``run_started_at`` (``status.runStartedAt``)
    bounds the judge's range: it never reaches before the run."""
    reg = registry if registry is not None else default_registry()
    ctx = CheckContext(session=session, metrics_server=spec.metrics_server or metrics_server, timeout=timeout,
                       operator_metrics_server=metrics_server,
                       max_answer_bytes=max_answer_bytes, run_started_at=run_started_at)
    todo = spec.analysis.metrics if metrics is None else metrics
    checks: list[Check] = [reg.build(spec, m, ctx) for m in todo]
    judge = judge_check(spec, ctx) if metrics is None else None
    if judge is not None:
        checks.append(judge)
    results = list(await asyncio.gather(*(_bounded(c, timeout) for c in checks)))
    if judge is not None and results[-1].kind != KIND:  # a bug in the judge: still the judge's result
        results[-1] = replace(results[-1], kind=KIND)
    return tuple(results)
