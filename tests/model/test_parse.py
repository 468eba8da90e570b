"""parse_canary: defaults, the 2019 shape, and every validation message."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from canaryd.model.durations import DurationError, parse_go_duration
from canaryd.model.parse import parse_canary
from canaryd.model.spec import CanarySpec, SpecError

TUTORIAL: dict[str, Any] = {
    "apiVersion": "flagger.app/v1alpha3",
    "kind": "Canary",
    "metadata": {"name": "podinfo", "namespace": "test", "uid": "u1", "generation": 3},
    "spec": {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "progressDeadlineSeconds": 60,
        "autoscalerRef": {"apiVersion": "autoscaling/v2beta1", "kind": "HorizontalPodAutoscaler",
                          "name": "podinfo"},
        "service": {"port": 9898, "gateways": ["public-gateway.istio-system.svc.cluster.local"],
                    "hosts": ["app.istio.example.com"]},
        "canaryAnalysis": {
            "interval": "30s", "threshold": 10, "maxWeight": 50, "stepWeight": 5,
            "metrics": [
                {"name": "istio_requests_total", "threshold": 99, "interval": "30s"},
                {"name": "istio_request_duration_seconds_bucket", "threshold": 500, "interval": "30s"},
            ],
            "webhooks": [{"name": "load-test", "url": "http://flagger-loadtester.test/", "timeout": "5s",
                          "metadata": {"cmd": "hey -z 1m -q 10 -c 2 http://podinfo.test:9898/"}}],
        },
    },
}

MINIMAL: dict[str, Any] = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "app", "namespace": "ns"},
    "spec": {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "service": {"port": 80},
        "analysis": {"stepWeight": 10, "threshold": 0,
                     "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
                     "webhooks": [{"name": "t", "url": "http://x/"}]},
    },
}


def ok(obj: dict[str, Any]) -> CanarySpec:
    spec = parse_canary(obj)
    assert isinstance(spec, CanarySpec), spec
    return spec


def test_tutorial_v1alpha3() -> None:
    s = ok(TUTORIAL)
    assert (s.name, s.namespace, s.uid, s.generation, s.key) == ("podinfo", "test", "u1", 3, "podinfo.test")
    a = s.analysis
    assert (a.interval_seconds, a.threshold, a.max_weight, a.step_weight) == (30.0, 10, 50, 5)
    assert [(m.name, m.builtin, m.threshold, m.interval) for m in a.metrics] == [
        ("istio_requests_total", "request-success-rate", 99.0, "30s"),
        ("istio_request_duration_seconds_bucket", "request-duration", 500.0, "30s"),
    ]
    assert a.webhooks[0].type == "rollout" and a.webhooks[0].timeout_seconds == 5.0
    assert s.autoscaler is not None and s.autoscaler.api_version == "autoscaling/v2"
    assert s.progress_deadline_seconds == 60 and s.service.name == "podinfo"
    assert s.primary_name == "podinfo-primary"
    assert s.service.gateways == ("public-gateway.istio-system.svc.cluster.local",)
    assert s.api_version == "flagger.app/v1alpha3" and s.strategy == "canary"


def test_v1beta1_defaults() -> None:
    s = ok(MINIMAL)
    a = s.analysis
    assert a.interval_seconds == 60.0 and a.threshold == 1 and a.max_weight == 100
    assert a.metrics[0].interval == "1m" and a.metrics[0].builtin == "request-success-rate"
    assert a.metrics[0].threshold_range is not None and a.metrics[0].threshold_range.min == 99
    assert a.webhooks[0].timeout_seconds == 10.0 and a.webhooks[0].type == "rollout"
    assert (a.primary_ready_threshold, a.canary_ready_threshold) == (100, 100)
    assert s.progress_deadline_seconds == 600 and s.provider == "istio"
    assert s.service.gateways == ("mesh",) and s.service.port_name == "http" and s.service.name == "web"


def with_analysis(**changes: Any) -> dict[str, Any]:
    obj = copy.deepcopy(MINIMAL)
    for k, v in changes.items():
        if v is None:
            obj["spec"]["analysis"].pop(k, None)
        else:
            obj["spec"]["analysis"][k] = v
    return obj


@pytest.mark.parametrize(("interval", "seconds"), [("5s", 5.0), ("1s", 1.0), ("1m30s", 90.0), ("1500ms", 1.5),
                                                     ("24h", 86400.0), ("", 60.0)])
def test_interval_is_honoured_down_to_one_second(interval: str, seconds: float) -> None:
    assert ok(with_analysis(interval=interval)).analysis.interval_seconds == seconds


def test_step_weights_set_max_weight() -> None:
    a = ok(with_analysis(stepWeight=None, stepWeights=[1, 5, 25, 60], maxWeight=30)).analysis
    assert a.max_weight == 60 and a.step_weights == (1, 5, 25, 60)


def test_iterations_and_ab() -> None:
    s = ok(with_analysis(stepWeight=None, iterations=5, match=[{"headers": {"x": {"exact": "1"}}}]))
    assert s.strategy == "ab-testing"
    assert ok(with_analysis(stepWeight=None, iterations=5)).strategy == "blue-green"


def test_custom_metric_with_query_or_template() -> None:
    a = ok(with_analysis(metrics=[{"name": "errors", "query": "sum(x)", "thresholdRange": {"max": 1}},
                                  {"name": "lat", "templateRef": {"name": "latency"}}])).analysis
    assert [m.builtin for m in a.metrics] == [None, None]


def mutate(path: str, value: Any, base: dict[str, Any] = MINIMAL) -> dict[str, Any]:
    obj = copy.deepcopy(base)
    node = obj
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[k]
    if value is None:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value
    return obj


BOUNDS = "is out of bounds: it must be between 1s and 24h"
BAD = [
    (with_analysis(stepWeight=0), "never advances"),
    (with_analysis(stepWeight=None), "never advances"),
    (with_analysis(maxWeight=150), "maxWeight 150 is above 100"),
    (with_analysis(stepWeight=None, stepWeights=[10, 5]), "strictly increasing, but 5 follows 10"),
    (with_analysis(stepWeight=None, stepWeights=[10, 120]), "stepWeights[1] is 120"),
    (with_analysis(metrics=[{"name": "my-metric"}]),
     "metric my-metric: Metric query failed for no usable metrics template and query were configured"),
    (mutate("spec.targetRef.kind", "DaemonSet"),
     "DaemonSet targets are not supported yet; supported kinds: Deployment"),
    (mutate("spec.provider", "linkerd"),
     "spec.provider linkerd is not supported; supported: istio (or leave it unset)"),
    (mutate("spec.autoscalerRef", {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "x"}),
     "spec.autoscalerRef kind ScaledObject (KEDA) is not supported yet; supported: HorizontalPodAutoscaler"),
    (with_analysis(sessionAffinity={"cookieName": "c", "primaryCookieName": "c"}),
     "can't use the same cookie name for both primary and cookie name"),
    (with_analysis(threshold=-1), "threshold -1 is negative"),
    (with_analysis(webhooks=[{"name": "h", "url": "http://x/", "type": "pre-flight"}]),
     "webhook h: type pre-flight is unknown"),
    (with_analysis(interval="soon"), "interval soon is not a duration"),
    (with_analysis(interval="500ms"), f"spec.analysis.interval 500ms {BOUNDS}"),
    (with_analysis(interval="25h"), f"spec.analysis.interval 25h {BOUNDS}"),
    (with_analysis(interval="9" * 40 + "s"), BOUNDS),
    (with_analysis(interval="4" * 400 + "h"), "spec.analysis.interval 4444"),
    (with_analysis(interval=30), "spec.analysis.interval 30 is not a duration"),
    (with_analysis(metrics=[{"name": "request-success-rate", "interval": "1.5m"}]),
     "spec.analysis.metrics[0].interval 1.5m is not a duration"),
    (with_analysis(metrics=[{"name": "request-success-rate", "interval": "48h"}]),
     f"spec.analysis.metrics[0].interval 48h {BOUNDS}"),
    (mutate("spec.progressDeadlineSeconds", 86401),
     "spec.progressDeadlineSeconds 86401 is out of bounds: it must be at most 86400 (24h)"),
    *[(with_analysis(webhooks=[{"name": "h", "url": "http://lt/", "metadata": {"type": t, "cmd": "x"}}]),
       f"webhook h: load tester task type {t} is not supported yet; supported: cmd, bash")
      for t in ("helm", "helmv3", "kubectl", "concord", "ngrinder")],
    (mutate("spec.targetRef.kind", "Service"),
     "spec.targetRef.kind Service is not supported; supported kinds: Deployment"),
    (mutate("spec.service.port", None), "spec.service.port is missing"),
    (mutate("spec.targetRef", None), "spec.targetRef is missing"),
    (mutate("apiVersion", "flagger.app/v2"), "apiVersion flagger.app/v2 is not supported"),
    (with_analysis(stepWeight="ten"), "stepWeight must be a whole number"),
]


@pytest.mark.parametrize(("obj", "needle"), BAD)
def test_invalid_specs_say_what_is_wrong(obj: dict[str, Any], needle: str) -> None:
    err = parse_canary(obj)
    assert isinstance(err, SpecError), err
    assert needle in err.message


def test_parse_never_raises_on_junk() -> None:
    for junk in ({}, {"spec": []}, {"spec": {"targetRef": "x"}}, {"metadata": 3, "spec": {}}):
        assert isinstance(parse_canary(junk), SpecError)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30.0), ("1m", 60.0), ("1m30s", 90.0), ("500ms", 0.5),
                                               ("1h2m3s", 3723.0), ("1.5s", 1.5), ("0", 0.0), ("-2s", -2.0),
                                               ("10us", 1e-5), ("7ns", 7e-9)])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "30", "s", "1x", "1m30", "--1s"])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(DurationError):
        parse_go_duration(text)


@pytest.mark.parametrize(("stamp", "want"), [
    ("2026-12-06T18:56:00Z", 1796583360.0),
    ("2026-12-06T18:56:00+00:00", 1796583360.0),
    (None, None), ("", None), ("yesterday", None), (12, None),
])
def test_creation_time_is_read_for_the_missing_target_grace(stamp: object, want: float | None) -> None:
    obj = copy.deepcopy(MINIMAL)
    if stamp is not None:
        obj["metadata"]["creationTimestamp"] = stamp
    got = parse_canary(obj)
    assert isinstance(got, CanarySpec) and got.created_at == want
