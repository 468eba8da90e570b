"""``analysis.judge``: presets in two lines, defaults, per-metric settings mapped onto the judge's
classification settings, and every bad value refused with its field named (the Canary's Valid=False)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from canaryd.model.parse import parse_canary
from canaryd.model.spec import CanarySpec, SpecError

BASE: dict[str, Any] = {
    "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
    "metadata": {"name": "podinfo", "namespace": "test", "uid": "u", "generation": 1},
    "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
             "service": {"port": 9898},
             "analysis": {"interval": "1m", "threshold": 1, "stepWeight": 10}},
}
Q = 'sum(rate(x{destination_workload=~"{{ target }}"}[{{ interval }}]))'


def parse(judge: Any) -> CanarySpec | SpecError:
    obj = copy.deepcopy(BASE)
    obj["spec"]["analysis"]["judge"] = judge
    return parse_canary(obj)


def test_no_judge_by_default() -> None:
    spec = parse_canary(copy.deepcopy(BASE))
    assert isinstance(spec, CanarySpec) and spec.analysis.judge is None


def test_the_istio_preset_in_two_lines() -> None:
    spec = parse({"preset": "istio"})
    assert isinstance(spec, CanarySpec) and spec.analysis.judge is not None
    j = spec.analysis.judge
    assert [(m.name, m.direction, m.tolerance) for m in j.metrics] == [
        ("request-success-rate", "decrease", 0.01), ("request-latency-p50", "increase", 0.15),
        ("request-latency-p99", "increase", 0.15)]
    assert (j.name, j.step_seconds, j.lookback_seconds, j.min_samples, j.confidence) == (
        "judge", 60, 1200, 20, 0.98)
    cfg = j.config()
    assert [(c.allowed_increase, c.allowed_decrease, c.groups) for c in cfg.metrics] == [
        (None, 0.99, ("request-success-rate",)), (1.15, None, ("request-latency-p50",)),
        (1.15, None, ("request-latency-p99",))]
    assert (cfg.pass_threshold, cfg.marginal_threshold) == (95, 75)


def test_a_listed_metric_overrides_the_preset_of_its_name_and_maps_its_settings() -> None:
    spec = parse({"preset": "istio", "step": "30s", "minSamples": 10, "confidence": 0.95, "pass": 90,
                  "marginal": 60, "nodata": "ignore", "consecutiveErrorLimit": 3,
                  "metrics": [{"name": "request-latency-p99", "preset": "request-latency-p99",
                               "tolerance": 0.3, "critical": True},
                              {"name": "errors", "query": Q, "direction": "either", "tolerance": 0.1,
                               "weight": 40, "group": "errs", "nodata": "fail", "dryRun": True,
                               "templateVariables": {"k": "v"}}]})
    assert isinstance(spec, CanarySpec) and spec.analysis.judge is not None
    j = spec.analysis.judge
    assert [m.name for m in j.metrics] == [
        "request-success-rate", "request-latency-p50", "request-latency-p99", "errors"]
    assert (j.lookback_seconds, j.policy.nodata, j.policy.consecutive_error_limit) == (300, "ignore", 3)
    cfg = j.config()
    p99, errors = cfg.metrics[2], cfg.metrics[3]
    assert (p99.allowed_increase, p99.critical, p99.confidence, p99.min_samples) == (1.3, True, 0.95, 10)
    assert (errors.allowed_increase, errors.allowed_decrease, errors.must_have_data, errors.dry_run,
            errors.groups) == (1.1, 0.9, True, True, ("errs",))
    assert dict(cfg.group_weights) == {"errs": 40}


@pytest.mark.parametrize(("judge", "message"), [
    ({"preset": "istio", "confidence": 1.5}, "spec.analysis.judge.confidence 1.5 is out of range"),
    ({"preset": "istio", "confidence": 0}, "spec.analysis.judge.confidence 0 is out of range"),
    ({"metrics": [{"name": "x", "query": Q, "tolerance": -0.1}]},
     "spec.analysis.judge.metrics[0].tolerance -0.1 is out of range"),
    ({"metrics": [{"name": "x", "query": Q, "direction": "decrease", "tolerance": 1}]},
     "spec.analysis.judge.metrics[0].tolerance 1 is out of range: must be at least 0 and below 1"),
    ({"step": "30s", "metrics": [{"name": "x", "query": 'rate(x{w=~"{{ target }}"}[1m])'}]},
     "spec.analysis.judge.metrics[0]: the query's step 30s is shorter than its rate window 1m: samples "
     "would overlap; use a step of at least 1m (spec.analysis.judge.step)"),
    ({"step": "30s", "metrics": [{"name": "x", "query": Q, "interval": "1m"}]},
     "the query's step 30s is shorter than its rate window 1m"),
    ({"preset": "istio", "step": "30s",
      "metrics": [{"name": "request-latency-p99", "preset": "request-latency-p99", "interval": "2m"}]},
     "spec.analysis.judge.metrics[0]: the query's step 30s is shorter than its rate window 2m"),
    ({"metrics": [{"name": "x", "query": "rate(x[{{ window }}])"}]},
     "spec.analysis.judge.metrics[0].query does not render: function \"window\" not defined"),
    ({"preset": "istio", "minSamples": 1}, "spec.analysis.judge.minSamples 1 is out of range"),
    ({"preset": "istio", "lookback": "5m"},
     "spec.analysis.judge.lookback 5m is shorter than minSamples x step"),
    ({"preset": "istio", "pass": 101}, "spec.analysis.judge.pass 101 is out of range"),
    ({"preset": "istio", "pass": 70, "marginal": 80}, "spec.analysis.judge.marginal 80 is above pass 70"),
    ({"preset": "kayenta"}, "spec.analysis.judge.preset 'kayenta' is unknown"),
    ({}, "spec.analysis.judge judges nothing"),
    ({"metrics": [{"name": "x"}]}, "spec.analysis.judge.metrics[0]: set query"),
    ({"metrics": [{"name": "x", "preset": "request-latency-p99", "query": Q}]}, "set either preset or query"),
    ({"metrics": [{"name": "x", "preset": "p95"}]}, "spec.analysis.judge.metrics[0].preset 'p95' is unknown"),
    ({"metrics": [{"name": "x", "query": Q, "direction": "up"}]},
     "spec.analysis.judge.metrics[0].direction 'up' is unknown"),
    ({"metrics": [{"name": "x", "query": Q, "weight": 120}]},
     "spec.analysis.judge.metrics[0].weight 120 is out"),
    ({"metrics": [{"name": "x", "query": Q, "weight": 60}, {"name": "y", "query": Q, "weight": 50}]},
     "spec.analysis.judge.groupWeights add up to 110"),
    ({"metrics": [{"name": "x", "query": Q, "group": "g", "weight": 60},
                  {"name": "y", "query": Q, "group": "g", "weight": 50}]},
     "spec.analysis.judge.metrics[1].weight 50 differs from another metric of group 'g'"),
    ({"metrics": [{"name": "x", "query": Q}, {"name": "x", "query": Q}]}, "has 'x' more than once"),
    ({"preset": "istio", "step": "2d"}, "spec.analysis.judge.step 2d is not a duration"),
    ({"preset": "istio", "nodata": "skip"}, "spec.analysis.judge.nodata skip is unknown"),
    ("istio", "spec.analysis.judge must be an object"),
])
def test_bad_settings_name_their_field(judge: Any, message: str) -> None:
    got = parse(judge)
    assert isinstance(got, SpecError), got
    assert message in got.message
