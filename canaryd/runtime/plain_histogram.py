"""A labelled Prometheus histogram kept as one plain list of floats per label set.

prometheus_client's ``Histogram`` gives every child a value object (with its dict) per bucket and for the
sum: 35 objects per canary for ``flagger_canary_duration_seconds`` that the cyclic garbage collector walks
at every full collection (35,000 at 1,000 canaries, more than a third of all it walked once the cache was
untracked). A list of floats is one object, and holds nothing the collector follows.
The exposition is the same (buckets, ``_count``, ``_sum``). No lock: canaryd observes and is scraped on
one event loop thread."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import cast

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

INF = float("inf")
# the client's own bound formatting ("0.005", "1.0", "+Inf"), so the series are named as before
_go_float = cast(Callable[[float], str], floatToGoString)


class _Child:
    """What ``labels(...)`` returns: ``observe`` for one label set (a short-lived view, nothing kept)."""

    __slots__ = ("_bounds", "_counts")

    def __init__(self, counts: list[float], bounds: tuple[float, ...]) -> None:
        self._counts, self._bounds = counts, bounds

    def observe(self, value: float) -> None:
        # counts[i] for the bucket whose upper bound is bounds[i] (not cumulative); the last slot is the sum
        self._counts[bisect_left(self._bounds, value)] += 1.0
        self._counts[-1] += value


class PlainHistogram(Collector):
    """``name`` with ``labelnames``; ``labels(**values).observe(v)`` and ``remove(*values)`` as in
    prometheus_client, so callers and the series pruning (``GoneTargets``) treat both alike."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS,
                 registry: CollectorRegistry | None = None) -> None:
        bounds = sorted(float(b) for b in buckets)
        if not bounds or bounds[-1] != INF:
            bounds.append(INF)
        self.name, self.documentation = name, documentation
        self.labelnames = tuple(labelnames)
        self._bounds = tuple(bounds)
        self._le = tuple(_go_float(b) for b in bounds)
        self._children: dict[tuple[str, ...], list[float]] = {}
        if registry is not None:
            registry.register(self)

    def labels(self, **values: str) -> _Child:
        key = tuple(str(values[n]) for n in self.labelnames)
        counts = self._children.get(key)
        if counts is None:
            counts = self._children[key] = [0.0] * (len(self._bounds) + 1)
        return _Child(counts, self._bounds)

    def remove(self, *values: str) -> None:
        """Drop one label set's series; KeyError when it has none."""
        del self._children[tuple(str(v) for v in values)]

    def describe(self) -> Iterable[HistogramMetricFamily]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterable[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, counts in self._children.items():
            running = 0.0
            buckets: list[tuple[str, float]] = []
            for le, count in zip(self._le, counts, strict=False):
                running += count
                buckets.append((le, running))
            family.add_metric(list(key), buckets, counts[-1])
        return [family]
