"""Per-canary series stay bounded by the Canaries live or deleted within the hour (issue 17): a deleted
Canary's duration histogram and success/failure counters stay an hour (``increase(...[1h])`` alerts still
see a failure right before the deletion), then go, while a live one's keep counting; so many Canaries
created and deleted under new names leave nothing behind."""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest

from canaryd.runtime.metrics import Metrics


def canary(name: str, target: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": {"targetRef": {"name": target}},
            "status": {"phase": "Succeeded"}}


def run_once(m: Metrics, target: str) -> None:
    m.duration.labels(name=target, namespace="ns").observe(12.0)
    m.record_outcome(target, "ns", "canary", False, "Promoting", "Succeeded")
    m.record_outcome(target, "ns", "canary", False, "Progressing", "Failed")


def test_a_thousand_canaries_come_and_go_and_leave_no_series_an_hour_later() -> None:
    m = Metrics()
    clock = [0.0]
    m.gone.keep, m.gone.now = 3600.0, lambda: clock[0]
    cached = [canary("keep", "keep-target")]
    m.watch(lambda: cached, dict, lambda: True)
    run_once(m, "keep-target")
    lines = len(generate_latest(m.registry).decode().splitlines())
    for i in range(1000):
        cached.append(canary(f"app-{i}", f"app-{i}"))
        run_once(m, f"app-{i}")
        del cached[-1]
    assert 'name="app-999"' in generate_latest(m.registry).decode()  # deleted, still alerting
    clock[0] = 3599.0
    assert 'name="app-0"' in generate_latest(m.registry).decode()
    clock[0] = 3600.0
    text = generate_latest(m.registry).decode()
    assert 'name="app-' not in text
    assert len(text.splitlines()) == lines
    get = m.registry.get_sample_value
    assert get("flagger_canary_duration_seconds_count", {"name": "keep-target", "namespace": "ns"}) == 1
    ok = {"name": "keep-target", "namespace": "ns", "deployment_strategy": "canary",
          "analysis_status": "completed"}
    assert get("flagger_canary_successes_total", ok) == 1 and get("flagger_canary_failures_total", ok) == 1


def test_a_canary_created_again_in_time_keeps_its_counts() -> None:
    m = Metrics()
    clock = [0.0]
    m.gone.now = lambda: clock[0]
    cached: list[dict[str, Any]] = []
    m.watch(lambda: cached, dict, lambda: True)
    run_once(m, "podinfo")
    generate_latest(m.registry)  # seen gone at 0
    clock[0] = 3000.0
    cached.append(canary("podinfo", "podinfo"))
    generate_latest(m.registry)  # back: forgiven
    cached.clear()
    clock[0] = 3700.0
    assert 'name="podinfo"' in generate_latest(m.registry).decode()  # gone again only since 3700


def test_a_live_canarys_series_stay_before_the_cache_is_given() -> None:
    m = Metrics()
    run_once(m, "podinfo")  # no watch yet: nothing to compare with, nothing dropped
    assert 'name="podinfo"' in generate_latest(m.registry).decode()
