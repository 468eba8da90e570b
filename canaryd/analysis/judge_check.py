"""The judge as a check of an analysis step: for each judged metric, its query rendered for the canary
and for the primary (``{{ target }}`` = each side's workload; the same template functions as
MetricTemplates), run as range queries over the last ``lookback`` at ``step`` (never from before the
run began: those points are the previous revision's), then classified, scored and turned into one
result by :mod:`canaryd.judge` (docs/judge.md, "Using the judge").

A metric whose query fails for either side is ``Error`` for that metric, never a silent pass; too few
points on a side is ``Nodata`` with the counts. The result carries the judge's whole report, kept in
status (``status.checks[].judge``) and in the run history."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from canaryd.analysis.base import CheckContext
from canaryd.analysis.prometheus import PrometheusClient, PrometheusError
from canaryd.analysis.prometheus_range import query_range
from canaryd.analysis.query_template import RenderError, TemplateVars, render
from canaryd.engine.types import CheckResult
from canaryd.judge.judge import JudgeReport, QueryFailed, Samples, judge
from canaryd.model.judge_spec import JudgeMetricSpec, JudgeSpec
from canaryd.model.spec import CanarySpec

KIND = "judge"


def side_vars(spec: CanarySpec, judge_spec: JudgeSpec, metric: JudgeMetricSpec, target: str) -> TemplateVars:
    """The template values for one side: ``target`` is that side's workload."""
    return TemplateVars(name=spec.name, namespace=spec.namespace, target=target,
                        service=spec.service.name or spec.target.name,
                        interval=judge_spec.interval_of(metric),
                        variables={str(k): str(v) for k, v in metric.template_variables.items()})


def result(judge_spec: JudgeSpec, report: JudgeReport) -> CheckResult:
    """The judge's report as the step's check result: verdict pass, inconclusive (the marginal band),
    fail, nodata or error; value the score (none when nodata or error: nothing was scored); the report
    in full for status."""
    scored = report.verdict in ("pass", "inconclusive", "fail")
    return CheckResult(name=judge_spec.name, verdict=report.verdict, value=report.score if scored else None,
                       threshold=f">= {report.pass_threshold:g}", message=report.message, kind=KIND,
                       report=report.to_dict())


def window_start(end: float, lookback_seconds: float, not_before: float | None) -> float:
    """The range's start: ``lookback`` before ``end``, clipped to the run's start so a step early in the
    run judges only this run's points (fewer of them: ``nodata`` below ``minSamples``). A run start
    after ``end`` (not on this clock) is no bound."""
    start = end - lookback_seconds
    if not_before is not None and not_before <= end:
        start = max(start, not_before)
    return start


@dataclass(frozen=True)
class JudgeCheck:
    spec: CanarySpec
    judge_spec: JudgeSpec
    client: PrometheusClient
    clock: Callable[[], float] = field(default=time.time)  # wall clock: Prometheus's timestamps
    not_before: float | None = None  # the run's start (status.runStartedAt): the range's earliest start

    @property
    def name(self) -> str:
        return self.judge_spec.name

    async def run(self) -> CheckResult:
        end = self.clock()
        start = window_start(end, self.judge_spec.lookback_seconds, self.not_before)
        measured = await asyncio.gather(*(self._metric(m, start, end) for m in self.judge_spec.metrics))
        data = {m.name: d for m, d in zip(self.judge_spec.metrics, measured, strict=True)}
        return result(self.judge_spec, judge(self.judge_spec.config(), data))

    async def _metric(self, m: JudgeMetricSpec, start: float, end: float) -> Samples | QueryFailed:
        sides = (("canary", self.spec.target.name), ("primary", self.spec.primary_name))
        try:
            queries = [render(m.query, side_vars(self.spec, self.judge_spec, m, t)) for _, t in sides]
        except RenderError as e:
            return QueryFailed(f"query render error: {e}")
        answers = await asyncio.gather(
            *(query_range(self.client, q, start, end, self.judge_spec.step_seconds) for q in queries),
            return_exceptions=True)
        for (side, _), a in zip(sides, answers, strict=True):
            if isinstance(a, PrometheusError):
                return QueryFailed(f"{side} query failed: {a}")
            if isinstance(a, BaseException):
                raise a
        canary, primary = answers
        assert isinstance(canary, list) and isinstance(primary, list)
        return Samples(tuple(canary), tuple(primary))

    def timed_out(self, seconds: float) -> CheckResult:
        return CheckResult(name=self.name, verdict="error", kind=KIND,
                           message=f"judge: could not measure: Prometheus {self.client.shown} timed out "
                                   f"after {seconds:g}s")


def judge_check(spec: CanarySpec, ctx: CheckContext) -> JudgeCheck | None:
    """The step's judge, when the Canary has one; it asks the Canary's Prometheus (``metricsServer``,
    else canaryd's), as the builtin checks do."""
    if spec.analysis.judge is None:
        return None
    client = PrometheusClient(address=ctx.metrics_server, session=ctx.session, timeout=ctx.timeout * 2,
                              max_answer_bytes=ctx.max_answer_bytes)
    return JudgeCheck(spec=spec, judge_spec=spec.analysis.judge, client=client, not_before=ctx.run_started_at)
