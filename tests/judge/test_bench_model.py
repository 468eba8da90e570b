"""The bench's model of Prometheus (bench/bench_judge.py): histogram_quantile as Prometheus computes it,
and rate windows longer than the step as sums over the steps they span. The error rates in docs/judge.md
are only as good as this."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.bench_judge import ISTIO_BUCKETS_MS, bucket_probabilities, histogram_quantile, window


def counts(**by_bound: int) -> np.ndarray:
    """Per-bucket counts from {"le_5": 10, "inf": 1}."""
    out = np.zeros(len(ISTIO_BUCKETS_MS) + 1, dtype=np.int64)
    for key, n in by_bound.items():
        out[-1 if key == "inf" else ISTIO_BUCKETS_MS.index(float(key[3:].replace("_", ".")))] = n
    return out


@pytest.mark.parametrize(("q", "buckets", "want"), [
    (0.5, {"le_5": 10, "le_10": 10}, 5.0),  # rank 10: the top of (1, 5]
    (0.75, {"le_5": 10, "le_10": 10}, 7.5),  # rank 15: halfway into (5, 10]
    (0.5, {"le_0_5": 4}, 0.25),  # the first bucket starts at 0
    (0.99, {"le_50": 99, "inf": 1}, 50.0),  # rank 99 still in (25, 50]
    (0.999, {"le_50": 99, "inf": 1}, 3_600_000.0),  # in +Inf: the highest finite bound
])
def test_histogram_quantile(q: float, buckets: dict[str, int], want: float) -> None:
    assert float(histogram_quantile(q, counts(**buckets))) == pytest.approx(want)


def test_histogram_quantile_of_no_requests_is_nan() -> None:
    assert math.isnan(float(histogram_quantile(0.5, counts())))


def test_bucket_probabilities_sum_to_one_and_put_the_median_at_its_bound() -> None:
    p = bucket_probabilities(50.0, 0.6)
    assert p.sum() == pytest.approx(1.0) and len(p) == len(ISTIO_BUCKETS_MS) + 1
    assert p[: ISTIO_BUCKETS_MS.index(50)].sum() + p[ISTIO_BUCKETS_MS.index(50)] == pytest.approx(0.5)


def test_window_sums_the_steps_a_rate_window_spans() -> None:
    a = np.arange(12).reshape(2, 6)
    assert window(a, 1).tolist() == a.tolist()
    assert window(a, 3).tolist() == [[3, 6, 9, 12], [21, 24, 27, 30]]
