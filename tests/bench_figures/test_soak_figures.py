"""The soak's figures (bench/soak_report.py, bench/soak_sample.py): slopes, the "still growing" verdict,
the RSS-per-run target and lingering per-canary series, on plain tables and on the text prometheus_client
itself writes."""

from __future__ import annotations

import os

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from bench.soak_report import figures, slope
from bench.soak_sample import Sample, take


@pytest.mark.parametrize(("xs", "ys", "want"), [
    ([0, 1], [0, 1], None),  # too few points
    ([5, 5, 5], [1, 2, 3], None),  # no spread
    ([0, 1, 2, 3], [10, 10, 10, 10], 0.0),
    ([0, 10, 20, 30], [100, 101, 102, 103], 0.1),
    ([0, 1, 2, 3], [3, 1, 3, 1], -0.4),
])
def test_slope(xs: list[float], ys: list[float], want: float | None) -> None:
    got = slope(xs, ys)
    assert got == want if want is None else got == pytest.approx(want)


def sample(t: float, runs: int, rss: int, tasks: int = 30, live: int = 20) -> Sample:
    return Sample(t=t, runs=runs, promoted=runs, failed=0, live=live, rss_kib=rss, fds=30, threads=3,
                  tasks=tasks, event_entries=100, series=500, heap_blocks=1000)


def test_flat_soak_meets_the_targets() -> None:
    samples = [sample(30 * i, 50 * i, 90_000 + (7 if i % 2 else 0), tasks=30 + i % 3) for i in range(20)]
    fig = figures(samples, warmup_s=120, restart=None)
    assert abs(fig["rss_kib_per_run"]) <= 0.1 and fig["rss_target_met"] is True
    assert fig["counts"]["tasks"]["grows"] is False
    assert fig["event_entries_within_bound"] is True  # 100 ≤ 64 × 20


def test_a_leak_of_a_kib_per_run_and_a_task_per_sample_are_seen() -> None:
    samples = [sample(30 * i, 50 * i, 90_000 + 50 * i, tasks=30 + 5 * i) for i in range(20)]
    fig = figures(samples, warmup_s=120, restart=None)
    assert fig["rss_kib_per_run"] == pytest.approx(1.0) and fig["rss_target_met"] is False
    assert fig["counts"]["tasks"]["grows"] is True


def test_lingering_series_of_a_deleted_canary_are_named() -> None:
    r = CollectorRegistry()
    status = Gauge("flagger_canary_status", "x", ["name", "namespace"], registry=r)
    status.labels(name="app-0001", namespace="soak").set(1)
    status.labels(name="gone", namespace="soak").set(1)
    text = generate_latest(r).decode()
    got = take(os.getpid(), text, t=1.0, runs=(3, 1), live={"app-0001"})
    assert got.stale_names == ["gone"] and got.series == 2 and got.runs == 4
    assert take(os.getpid(), text, t=1.0, runs=(0, 0), live={"app-0001"}, grace={"gone"}).stale_names == []
    assert got.rss_kib > 0 and got.fds > 0 and got.threads >= 1


def test_canary_tasks_beyond_the_live_canaries_are_counted() -> None:
    """Issue 17's leak: a deleted Canary's task living on shows as CanaryTask.run above the live count."""
    samples = [sample(30 * i, 50 * i, 90_000, live=20) for i in range(6)]
    for i, s in enumerate(samples):
        s.task_kinds = {"CanaryTask.run": 20 + i, "Informer._run": 10}
    fig = figures(samples, warmup_s=60, restart=None)
    assert fig["canary_tasks_over_live"] == {"max": 5, "end": 5}
    assert fig["task_kinds_change"] == {"CanaryTask.run": 2}  # from the sample after warm-up's first
    flat = [sample(30 * i, 50 * i, 90_000, live=20) for i in range(6)]
    for s in flat:
        s.task_kinds = {"CanaryTask.run": 20}
    assert figures(flat, warmup_s=60, restart=None)["canary_tasks_over_live"] == {"max": 0, "end": 0}
