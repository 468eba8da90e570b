"""The builtin Istio checks (``request-success-rate``, ``request-duration``) and inline ``query``
checks, with Flagger's exact PromQL, comparisons and messages (flagger-reference.md §5.1–5.3).

The 2019 metric names ``istio_requests_total`` (minimum success %) and
``istio_request_duration_seconds_bucket`` (maximum ms) are aliases of the two builtins, so tutorial
manifests keep working.
"""

from __future__ import annotations

from dataclasses import dataclass

from canaryd.analysis import thresholds
from canaryd.analysis.base import Check, CheckContext, error_result
from canaryd.analysis.prometheus import NoValuesFound, PrometheusClient, PrometheusError
from canaryd.analysis.query_template import RenderError, TemplateVars, collapse_whitespace, render
from canaryd.engine.types import CheckResult
from canaryd.model.parse_analysis import DURATION, SUCCESS_RATE, builtin_metric
from canaryd.model.spec import CanarySpec, MetricSpec

# Laid out so that collapsing whitespace gives exactly the strings Flagger sends (leading space included).
ISTIO_QUERIES = {
    SUCCESS_RATE: """
    sum(
      rate(
        istio_requests_total{
          reporter="destination",
          destination_workload_namespace="{{ namespace }}",
          destination_workload=~"{{ target }}",
          response_code!~"5.*"
        }[{{ interval }}]
      )
    )
    /
    sum(
      rate(
        istio_requests_total{
          reporter="destination",
          destination_workload_namespace="{{ namespace }}",
          destination_workload=~"{{ target }}"
        }[{{ interval }}]
      )
    )
    * 100""",
    DURATION: """
    histogram_quantile(
      0.99,
      sum(
        rate(
          istio_request_duration_milliseconds_bucket{
            reporter="destination",
            destination_workload_namespace="{{ namespace }}",
            destination_workload=~"{{ target }}"
          }[{{ interval }}]
        )
      ) by (le)
    )""",
}


def builtin_kind(metric: MetricSpec) -> str | None:
    """``request-success-rate`` / ``request-duration`` when the metric is a builtin (matched by name
    only, as Flagger does: :func:`canaryd.model.parse_analysis.builtin_metric`), else None."""
    return builtin_metric(metric.name)


def template_vars(spec: CanarySpec, metric: MetricSpec) -> TemplateVars:
    return TemplateVars(name=spec.name, namespace=spec.namespace, target=spec.target.name,
                        service=spec.service.name or spec.target.name, interval=metric.interval,
                        variables={str(k): str(v) for k, v in metric.template_variables.items()})


def builtin_query(kind: str, spec: CanarySpec, metric: MetricSpec) -> str:
    """The exact PromQL string sent for a builtin check."""
    return collapse_whitespace(render(ISTIO_QUERIES[kind], template_vars(spec, metric)))


@dataclass(frozen=True)
class IstioBuiltinCheck:
    kind: str  # SUCCESS_RATE | DURATION
    spec: CanarySpec
    metric: MetricSpec
    client: PrometheusClient

    @property
    def name(self) -> str:
        return self.metric.name

    async def run(self) -> CheckResult:
        try:
            value = await self.client.query(builtin_query(self.kind, self.spec, self.metric))
        except NoValuesFound as e:
            return CheckResult(name=self.name, verdict="nodata", message=self._no_values(e))
        except PrometheusError as e:
            return error_result(self.name, f"Prometheus query failed: {e}")
        if self.kind == SUCCESS_RATE:
            out = thresholds.success_rate(value, self.metric)
        else:
            out = thresholds.request_duration(value, self.metric)
        return CheckResult(name=self.name, verdict="pass" if out.passed else "fail", value=value,
                           threshold=out.threshold, message=out.message)

    def timed_out(self, seconds: float) -> CheckResult:
        return error_result(self.name, f"Prometheus query failed: Prometheus {self.client.shown} "
                                       f"timed out after {seconds:g}s")

    def _no_values(self, err: NoValuesFound) -> str:
        text = (f"Halt advancement no values found for {self.spec.provider} metric {self.name} probably "
                f"{self.spec.target.name}.{self.spec.namespace} is not receiving traffic")
        if self.kind == SUCCESS_RATE:  # Flagger adds the error only to the success-rate text
            text += f": running query failed: {err}"
        return text


@dataclass(frozen=True)
class InlineQueryCheck:
    """A metric with an inline (deprecated) ``query``, run against the Canary's Prometheus."""

    spec: CanarySpec
    metric: MetricSpec
    client: PrometheusClient

    @property
    def name(self) -> str:
        return self.metric.name

    async def run(self) -> CheckResult:
        assert self.metric.query is not None
        try:
            query = render(self.metric.query, template_vars(self.spec, self.metric))
        except RenderError as e:
            return error_result(self.name, f"Metric query failed for {self.name}: query render error: {e}")
        try:
            value = await self.client.query(query)
        except NoValuesFound:
            return CheckResult(name=self.name, verdict="nodata",
                               message=f"Halt advancement no values found for metric: {self.name}")
        except PrometheusError as e:
            return error_result(self.name, f"Prometheus query failed for {self.name}: {e}")
        return thresholds.custom_result(self.name, value, self.metric)

    def timed_out(self, seconds: float) -> CheckResult:
        return error_result(self.name, f"Prometheus query failed for {self.name}: Prometheus "
                                       f"{self.client.shown} timed out after {seconds:g}s")


def _client(ctx: CheckContext) -> PrometheusClient:
    # the client's own timeout is a safety net; run_checks bounds the check at ctx.timeout
    return PrometheusClient(address=ctx.metrics_server, session=ctx.session, timeout=ctx.timeout * 2,
                            max_answer_bytes=ctx.max_answer_bytes)


def istio_builtin_factory(spec: CanarySpec, metric: MetricSpec, ctx: CheckContext) -> Check | None:
    kind = builtin_kind(metric)
    if kind is None:
        return None
    return IstioBuiltinCheck(kind=kind, spec=spec, metric=metric, client=_client(ctx))


def inline_query_factory(spec: CanarySpec, metric: MetricSpec, ctx: CheckContext) -> Check | None:
    if not metric.query:
        return None
    return InlineQueryCheck(spec=spec, metric=metric, client=_client(ctx))
