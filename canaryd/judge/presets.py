"""Builtin Istio metrics for the judge, so a Canary names them instead of writing PromQL.

Both are normalised per request (a share of requests, a quantile of their durations), so the canary's
smaller traffic share does not bias them the way request or error *counts* would (docs/judge.md). The
caller renders each query twice, with ``target`` set to the canary's workload and then the primary's, as
canaryd's builtin checks build them (``destination_workload=~"{{ target }}"``), and ``interval`` set to the
rate window, which must not exceed the range query's step (:mod:`canaryd.judge.samples`)."""

from __future__ import annotations

from dataclasses import dataclass

from canaryd.judge.classify import MetricConfig

SUCCESS_RATE = "request-success-rate"
LATENCY_P50 = "request-latency-p50"
LATENCY_P99 = "request-latency-p99"
PRESETS = (SUCCESS_RATE, LATENCY_P50, LATENCY_P99)

# Tolerances (mean ratio canary/primary beyond which a significant change is flagged): see the
# measured error rates in docs/judge.md, "Measured error rates".
LATENCY_ALLOWED_INCREASE = 1.15
SUCCESS_ALLOWED_DECREASE = 0.99

_SELECTOR = ('reporter="destination", destination_workload_namespace="{{ namespace }}", '
             'destination_workload=~"{{ target }}"')

_SUCCESS = (f'sum(rate(istio_requests_total{{{_SELECTOR}, response_code!~"5.*"}}[{{{{ interval }}}}])) / '
            f"sum(rate(istio_requests_total{{{_SELECTOR}}}[{{{{ interval }}}}])) * 100")


def _latency(quantile: str, metric: str, scale: str) -> str:
    return (f"histogram_quantile({quantile}, sum(rate({metric}{{{_SELECTOR}}}[{{{{ interval }}}}])) "
            f"by (le)){scale}")


@dataclass(frozen=True)
class Preset:
    config: MetricConfig
    query: str  # a query template: {{ namespace }}, {{ target }}, {{ interval }}
    unit: str


def istio(name: str, *, seconds_buckets: bool = False) -> Preset:
    """The preset called ``name``; ``seconds_buckets`` reads Istio's old (v1alpha3 mixer)
    ``istio_request_duration_seconds_bucket`` and reports milliseconds all the same."""
    metric, scale = (("istio_request_duration_seconds_bucket", " * 1000") if seconds_buckets
                     else ("istio_request_duration_milliseconds_bucket", ""))
    if name == SUCCESS_RATE:
        return Preset(MetricConfig(name=name, direction="decrease",
                                   allowed_decrease=SUCCESS_ALLOWED_DECREASE), _SUCCESS, "%")
    if name in (LATENCY_P50, LATENCY_P99):
        quantile = "0.5" if name == LATENCY_P50 else "0.99"
        cfg = MetricConfig(name=name, direction="increase", allowed_increase=LATENCY_ALLOWED_INCREASE)
        return Preset(cfg, _latency(quantile, metric, scale), "ms")
    raise KeyError(f"no judge preset {name!r}; known: {', '.join(PRESETS)}")
