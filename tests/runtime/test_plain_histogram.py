"""PlainHistogram (canaryd/runtime/plain_histogram.py) exposes exactly what prometheus_client's Histogram does
for the same observations — the same series names, ``le`` labels, counts and sums — while keeping one object
per label set for the garbage collector instead of a value object per bucket."""

from __future__ import annotations

import gc

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from canaryd.runtime.plain_histogram import PlainHistogram

NAME, HELP = "flagger_canary_duration_seconds", "Seconds spent performing canary analysis."


def exposition(make: type[Histogram] | type[PlainHistogram], observations: list[tuple[str, str, float]],
               removed: list[tuple[str, str]], **kw: object) -> list[str]:
    reg = CollectorRegistry()
    hist = make(NAME, HELP, ["name", "namespace"], registry=reg, **kw)  # type: ignore[arg-type]
    for name, ns, value in observations:
        hist.labels(name=name, namespace=ns).observe(value)
    for name, ns in removed:
        hist.remove(name, ns)
    return sorted(line for line in generate_latest(reg).decode().splitlines() if "_created" not in line)


@pytest.mark.parametrize(("observations", "removed", "kw"), [
    ([], [], {}),
    ([("podinfo", "test", 0.2)], [], {}),
    # on a bound (le is inclusive), between bounds, past the last finite one, zero, negative
    ([("a", "x", 0.005), ("a", "x", 0.0051), ("a", "x", 12.0), ("a", "x", 0.0), ("a", "x", -1.0),
      ("b", "y", 2.5), ("b", "y", 7.5)], [], {}),
    ([("a", "x", 0.3), ("b", "x", 0.4), ("a", "x", 1.0)], [("a", "x")], {}),
    # own buckets, without +Inf
    ([("a", "x", 0.05), ("a", "x", 3.0), ("a", "x", 120.0)], [], {"buckets": (0.1, 1.0, 60.0)}),
])
def test_the_exposition_is_prometheus_clients(observations: list[tuple[str, str, float]],
                                               removed: list[tuple[str, str]], kw: dict[str, object]) -> None:
    ours = exposition(PlainHistogram, observations, removed, **kw)
    theirs = exposition(Histogram, observations, removed, **kw)
    assert ours == theirs
    assert any(line.startswith(f"# TYPE {NAME} histogram") for line in ours)


def test_removing_a_series_it_does_not_have_raises_key_error() -> None:
    hist = PlainHistogram(NAME, HELP, ["name", "namespace"])
    hist.labels(name="a", namespace="x").observe(1.0)
    with pytest.raises(KeyError):
        hist.remove("b", "x")
    hist.remove("a", "x")
    assert [f.samples for f in hist.collect()] == [[]]


def test_a_thousand_canaries_cost_the_collector_one_object_each() -> None:
    def tracked_after(make: type[Histogram] | type[PlainHistogram]) -> int:
        gc.collect()
        before = len(gc.get_objects())
        hist = make(NAME, HELP, ["name", "namespace"])
        for i in range(1000):
            hist.labels(name=f"app-{i}", namespace="ns").observe(0.1)
        gc.collect()  # what a collection finds untrackable (tuples of strings) leaves its list
        grown = len(gc.get_objects()) - before
        del hist
        return grown

    assert tracked_after(PlainHistogram) < 1100
    assert tracked_after(Histogram) > 10_000  # the cost the plain lists remove
