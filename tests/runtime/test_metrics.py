"""The Metrics class on its own: outcome counters (Flagger's labels), per-canary gauges read from the
cache only while leading, a deleted Canary's series gone, no ``*_created`` series, process and Python
collectors on."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import generate_latest

from canaryd.runtime.canary_gauges import canary_series, status_value
from canaryd.runtime.metrics import Metrics


def canary(name: str, target: str, phase: str | None = None, weight: int | None = None,
           ns: str = "ns") -> dict[str, Any]:
    status: dict[str, Any] = {}
    if phase is not None:
        status["phase"] = phase
    if weight is not None:
        status["canaryWeight"] = weight
    return {"metadata": {"namespace": ns, "name": name}, "spec": {"targetRef": {"name": target}},
            "status": status}


@pytest.mark.parametrize("phase,value", [
    ("Progressing", 0), ("Failed", 2), ("Succeeded", 1), ("Initialized", 1), ("Promoting", 1),
    ("Finalising", 1), ("Waiting", 1), ("WaitingPromotion", 1), ("Terminating", 1), ("", 1)])
def test_status_values_are_flaggers(phase: str, value: int) -> None:
    assert status_value(phase) == value


@pytest.mark.parametrize("obj,series", [
    (canary("c", "podinfo", "Progressing", 20), ("podinfo", "ns", 0, 20)),
    (canary("c", "podinfo", "Failed", None), ("podinfo", "ns", 2, 0)),
    (canary("c", "podinfo"), ("podinfo", "ns", 1, 0)),  # not initialized yet
    (canary("c", "podinfo", "Progressing", 140), ("podinfo", "ns", 0, 0)),  # nonsense: not exported as is
    ({"metadata": {"namespace": "ns", "name": "c"}, "spec": {}}, None),  # no target: no series
])
def test_series_of_a_cached_canary(obj: dict[str, Any], series: tuple[str, str, int, int] | None) -> None:
    assert canary_series(obj) == series


OUTCOMES = [
    # before, after, strategy, skipped -> (counter, analysis_status) or None
    ("Promoting", "Succeeded", "canary", False, ("successes", "completed")),
    ("Finalising", "Succeeded", "blue-green", False, ("successes", "completed")),
    ("Progressing", "Succeeded", "ab-testing", True, ("successes", "skipped")),
    ("Progressing", "Failed", "canary", False, ("failures", "completed")),
    ("Promoting", "Failed", "canary", True, ("failures", "completed")),  # failed promotion
    ("Succeeded", "Succeeded", "canary", False, None),  # a later write of a settled canary
    ("Failed", "Failed", "canary", False, None),
    ("Initialized", "Progressing", "canary", False, None),
    ("", "Initialized", "canary", False, None),
]


@pytest.mark.parametrize("before,after,strategy,skipped,counted", OUTCOMES)
def test_outcome_counters(before: str, after: str, strategy: str, skipped: bool,
                          counted: tuple[str, str] | None) -> None:
    m = Metrics()
    m.record_outcome("podinfo", "ns", strategy, skipped, before, after)
    values = {}
    for counter in ("successes", "failures"):
        for status in ("completed", "skipped"):
            labels = {"name": "podinfo", "namespace": "ns", "deployment_strategy": strategy,
                      "analysis_status": status}
            values[(counter, status)] = m.registry.get_sample_value(f"flagger_canary_{counter}_total", labels)
    expected = {key: (1.0 if key == counted else None) for key in values}
    assert values == expected  # and no series at all before the first increment


def test_gauges_come_from_the_cache_only_while_leading() -> None:
    m = Metrics()
    cached = [canary("a", "podinfo", "Progressing", 30), canary("b", "other", "Succeeded", 0),
              canary("c", "third", "Failed", 0, ns="ns2")]
    counts = {"Canary": 3, "Deployment": 5}
    leading = [False]
    m.watch(lambda: cached, lambda: counts, lambda: leading[0])
    get = m.registry.get_sample_value
    assert get("flagger_canary_status", {"name": "podinfo", "namespace": "ns"}) is None  # standby
    assert get("canaryd_cache_objects", {"kind": "Deployment"}) == 5  # every replica: warm caches

    leading[0] = True  # leadership won: every cached canary at once, no write needed
    assert get("flagger_canary_status", {"name": "podinfo", "namespace": "ns"}) == 0
    assert get("flagger_canary_status", {"name": "other", "namespace": "ns"}) == 1
    assert get("flagger_canary_status", {"name": "third", "namespace": "ns2"}) == 2
    assert get("flagger_canary_weight", {"workload": "podinfo", "namespace": "ns"}) == 30
    assert get("flagger_canary_weight", {"workload": "podinfo-primary", "namespace": "ns"}) == 70
    assert get("flagger_canary_total", {"namespace": "ns"}) == 2
    assert get("flagger_canary_total", {"namespace": "ns2"}) == 1

    cached[0] = canary("a", "podinfo", "Progressing", 40)  # the next step, as the watch delivers it
    counts["Deployment"] = 6
    assert get("flagger_canary_weight", {"workload": "podinfo", "namespace": "ns"}) == 40
    assert get("canaryd_cache_objects", {"kind": "Deployment"}) == 6

    m.metric_analysis.labels(name="podinfo", namespace="ns", metric="request-success-rate").set(99.5)
    labels = {"name": "podinfo", "namespace": "ns", "metric": "request-success-rate"}
    assert get("flagger_canary_metric_analysis", labels) == 99.5

    leading[0] = False  # leadership lost: nothing per canary, and the measured values are dropped
    for name in ("flagger_canary_status", "flagger_canary_weight", "flagger_canary_total",
                 "flagger_canary_metric_analysis"):
        assert f"\n{name}{{" not in "\n" + generate_latest(m.registry).decode(), name
    leading[0] = True
    assert get("flagger_canary_metric_analysis", labels) is None  # not a stale value from before
    assert get("flagger_canary_status", {"name": "podinfo", "namespace": "ns"}) == 0


def test_a_deleted_canarys_series_disappear() -> None:
    m = Metrics()
    cached = [canary("a", "podinfo", "Progressing", 30), canary("b", "other", "Progressing", 10)]
    m.watch(lambda: cached, dict, lambda: True)
    for target in ("podinfo", "other"):
        m.metric_analysis.labels(name=target, namespace="ns", metric="rate").set(1)
    get = m.registry.get_sample_value
    rate = {"name": "podinfo", "namespace": "ns", "metric": "rate"}
    assert get("flagger_canary_metric_analysis", rate) == 1
    del cached[0]
    text = generate_latest(m.registry).decode()
    assert 'name="podinfo"' not in text and 'workload="podinfo' not in text
    assert get("flagger_canary_status", {"name": "other", "namespace": "ns"}) == 0
    assert get("flagger_canary_metric_analysis", {"name": "other", "namespace": "ns", "metric": "rate"}) == 1
    assert get("flagger_canary_total", {"namespace": "ns"}) == 1
    cached.append(canary("a", "podinfo", "Initialized", 0))  # created again: its old value stays gone
    assert get("flagger_canary_metric_analysis", {"name": "podinfo", "namespace": "ns", "metric": "rate"}) \
        is None


def test_a_second_watch_replaces_the_first() -> None:
    m = Metrics()
    m.watch(lambda: [canary("a", "old")], dict, lambda: True)
    m.watch(lambda: [canary("a", "new")], dict, lambda: True)
    assert m.registry.get_sample_value("flagger_canary_status", {"name": "old", "namespace": "ns"}) is None
    assert m.registry.get_sample_value("flagger_canary_status", {"name": "new", "namespace": "ns"}) == 1


def test_exposition_has_no_created_series_and_the_process_collectors() -> None:
    m = Metrics()
    m.record_outcome("podinfo", "ns", "canary", False, "Progressing", "Failed")
    m.duration.labels(name="podinfo", namespace="ns").observe(0.2)
    m.wakeups.labels(cause="wake").inc()
    text = generate_latest(m.registry).decode()
    assert "_created" not in text
    assert 'flagger_canary_failures_total{analysis_status="completed",deployment_strategy="canary",' \
           'name="podinfo",namespace="ns"} 1.0' in text
    assert "# TYPE flagger_canary_duration_seconds histogram" in text
    assert "# TYPE flagger_canary_successes_total counter" in text
    assert m.registry.get_sample_value("process_cpu_seconds_total") is not None
    assert m.registry.get_sample_value("process_resident_memory_bytes") > 0  # type: ignore[operator]
    assert "python_info{" in text and "python_gc_objects_collected_total" in text


def test_flagger_info() -> None:
    m = Metrics(version="9.9.9")
    assert m.registry.get_sample_value("flagger_info", {"version": "9.9.9", "mesh_provider": "istio"}) == 1


def test_an_analysis_value_not_computed_is_absent_not_stale() -> None:
    m = Metrics()
    m.watch(lambda: [canary("a", "podinfo", "Progressing", 10)], dict, lambda: True)
    labels = {"name": "podinfo", "namespace": "ns", "metric": "request-success-rate"}
    m.set_analysis("podinfo", "ns", "request-success-rate", 99.0)
    assert m.registry.get_sample_value("flagger_canary_metric_analysis", labels) == 99.0
    m.set_analysis("podinfo", "ns", "request-success-rate", None)  # no data this step
    assert m.registry.get_sample_value("flagger_canary_metric_analysis", labels) is None
    m.set_analysis("podinfo", "ns", "request-success-rate", None)  # and again: nothing to remove
    m.set_analysis("podinfo", "ns", "request-success-rate", 98.0)
    assert m.registry.get_sample_value("flagger_canary_metric_analysis", labels) == 98.0


def test_step_lateness_buckets_resolve_1ms_to_10s() -> None:
    """canaryd's own share of step lateness must be readable from 1 ms to 10 s: 1-2-5 steps there (each
    bound at most 2.5x the one below), the name unchanged, every bucket exposed."""
    import itertools

    from prometheus_client.parser import text_string_to_metric_families

    from canaryd.runtime.metrics import LATENESS_BUCKETS

    fine = [b for b in LATENESS_BUCKETS if b <= 10.0]
    assert fine[0] == 0.001 and fine[-1] == 10.0
    assert all(hi / lo <= 2.5 + 1e-9 for lo, hi in itertools.pairwise(fine))
    m = Metrics()
    m.step_lateness.observe(0.0015)
    m.step_lateness.observe(0.7)
    text = generate_latest(m.registry).decode()
    fam = next(f for f in text_string_to_metric_families(text) if f.name == "canaryd_step_lateness_seconds")
    got = {s.labels["le"]: s.value for s in fam.samples if s.name.endswith("_bucket")}
    assert got["0.001"] == 0 and got["0.002"] == 1 and got["0.5"] == 1 and got["1.0"] == 2
    assert set(got) == {str(b) for b in LATENESS_BUCKETS} | {"+Inf"}
