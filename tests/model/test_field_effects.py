"""Fields that once were accepted and then ignored: what the parser now makes of them (the actuators'
and the engine's side is in tests/actuators/test_field_effects.py and tests/engine/test_field_effects.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from canaryd.model.parse import parse_canary
from canaryd.model.providers import METRIC_PROVIDERS, parse_metric_template, unsupported_provider
from canaryd.model.spec import CanarySpec, SpecError
from tests.model.test_parse import MINIMAL, mutate, with_analysis


def ok(obj: dict[str, Any]) -> CanarySpec:
    spec = parse_canary(obj)
    assert isinstance(spec, CanarySpec), spec
    return spec


def test_canary_without_analysis_runs_as_skip_analysis() -> None:
    spec = ok(mutate("spec.analysis", None))
    assert spec.skip_analysis is True
    assert spec.analysis.metrics == () and spec.analysis.webhooks == ()


def test_canary_with_analysis_is_not_skipped() -> None:
    assert ok(MINIMAL).skip_analysis is False


@pytest.mark.parametrize(("written", "primary", "canary"), [
    ({}, 100, 100),
    ({"primaryReadyThreshold": 0, "canaryReadyThreshold": 0}, 0, 0),
    ({"primaryReadyThreshold": 50}, 50, 100),
])
def test_ready_thresholds_honour_zero(written: dict[str, Any], primary: int, canary: int) -> None:
    a = ok(with_analysis(**written)).analysis
    assert (a.primary_ready_threshold, a.canary_ready_threshold) == (primary, canary)


def test_ready_threshold_out_of_range_is_refused() -> None:
    err = parse_canary(with_analysis(canaryReadyThreshold=101))
    assert isinstance(err, SpecError)
    assert "spec.analysis.canaryReadyThreshold 101 must be a percentage between 0 and 100" in err.message


def _with_hpa(replicas: dict[str, Any] | None) -> dict[str, Any]:
    obj = copy.deepcopy(MINIMAL)
    ref: dict[str, Any] = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "web"}
    if replicas is not None:
        ref["primaryScalerReplicas"] = replicas
    obj["spec"]["autoscalerRef"] = ref
    return obj


def test_primary_scaler_replicas_are_read() -> None:
    ref = ok(_with_hpa({"minReplicas": 3, "maxReplicas": 7})).autoscaler
    assert ref is not None and (ref.primary_min_replicas, ref.primary_max_replicas) == (3, 7)
    ref = ok(_with_hpa(None)).autoscaler
    assert ref is not None and (ref.primary_min_replicas, ref.primary_max_replicas) == (None, None)


def test_primary_scaler_replicas_min_above_max_is_refused() -> None:
    err = parse_canary(_with_hpa({"minReplicas": 5, "maxReplicas": 2}))
    assert isinstance(err, SpecError)
    assert err.message == ("spec.autoscalerRef.primaryScalerReplicas.minReplicas 5 is above maxReplicas 2; "
                           "swap them")


def test_service_traffic_distribution_and_unmanaged_metadata_are_read() -> None:
    obj = copy.deepcopy(MINIMAL)
    obj["spec"]["service"].update(trafficDistribution="PreferClose",
                                  unmanagedMetadata={"labels": ["team"], "annotations": ["owner/a"]})
    svc = ok(obj).service
    assert svc.traffic_distribution == "PreferClose"
    assert (svc.unmanaged_labels, svc.unmanaged_annotations) == (("team",), ("owner/a",))


@pytest.mark.parametrize(("written", "read"), [
    ("prometheus", "prometheus"), ("", "prometheus"), (None, "prometheus"), ("victoriametrics", "prometheus"),
    ("datadog", "datadog"), ("externalmetrics", "externalmetrics"),
])
def test_unknown_template_provider_types_are_read_as_prometheus(written: str | None, read: str) -> None:
    provider: dict[str, Any] = {"address": "http://prom:9090"}
    if written is not None:
        provider["type"] = written
    template = parse_metric_template({"spec": {"provider": provider, "query": "vector(1)"}})
    assert template.provider.type == read
    refused = unsupported_provider("m", "ns", "t", template.provider.type)
    assert (refused is None) == (read in METRIC_PROVIDERS)
