"""Comparison rules and Halt texts of flagger-reference.md §5.3, as plain tables."""

import pytest

from canaryd.analysis import thresholds
from canaryd.model.spec import MetricSpec

from .specs import metric

SR = "request-success-rate"
DUR = "request-duration"


@pytest.mark.parametrize(("m", "value", "passed", "message", "threshold"), [
    (metric(SR, lo=99), 69.1666, False, "success rate 69.17% < 99%", ">= 99%"),
    (metric(SR, lo=99), 99.0, True, "", ">= 99%"),
    (metric(SR, lo=99.5), 99.4, False, "success rate 99.40% < 99.5%", ">= 99.5%"),
    (metric(SR, hi=50), 60.0, False, "success rate 60.00% > 50%", "<= 50%"),
    (metric(SR, lo=90, hi=95), 97.0, False, "success rate 97.00% > 95%", ">= 90% and <= 95%"),
    (metric(SR, lo=90, hi=95), 92.0, True, "", ">= 90% and <= 95%"),
    # legacy threshold = minimum percent
    (metric(SR, threshold=99), 98.69, False, "success rate 98.69% < 99%", ">= 99%"),
    (metric(SR, threshold=99), 100.0, True, "", ">= 99%"),
    (metric("istio_requests_total", threshold=99), 98.0, False, "success rate 98.00% < 99%", ">= 99%"),
    (metric(SR), 0.0, True, "", ">= 0%"),  # no threshold at all: never fails (Flagger)
])
def test_success_rate(m: MetricSpec, value: float, passed: bool, message: str, threshold: str) -> None:
    assert thresholds.success_rate(value, m) == thresholds.Outcome(passed, message, threshold)


@pytest.mark.parametrize(("m", "value_ms", "passed", "message", "threshold"), [
    (metric(DUR, hi=500), 1515.7, False, "request duration 1.515s > 500ms", "<= 500ms"),
    (metric(DUR, hi=500), 500.9, True, "", "<= 500ms"),  # truncated to 500ms, not above
    (metric(DUR, hi=500.9), 500.95, True, "", "<= 500ms"),
    (metric(DUR, lo=10), 9.5, False, "request duration 9ms < 10ms", ">= 10ms"),
    (metric(DUR, lo=10, hi=90000), 95000, False, "request duration 1m35s > 1m30s", ">= 10ms and <= 1m30s"),
    # legacy threshold = maximum milliseconds
    (metric(DUR, threshold=500), 501.0, False, "request duration 501ms > 500ms", "<= 500ms"),
    (metric("istio_request_duration_seconds_bucket", threshold=500), 20.0, True, "", "<= 500ms"),
    (metric(DUR), 1.0, False, "request duration 1ms > 0s", "<= 0s"),  # no threshold: any traffic fails
])
def test_request_duration(m: MetricSpec, value_ms: float, passed: bool, message: str, threshold: str) -> None:
    assert thresholds.request_duration(value_ms, m) == thresholds.Outcome(passed, message, threshold)


@pytest.mark.parametrize(("m", "value", "passed", "message", "threshold"), [
    (metric("errors", hi=1), 1.234, False, "errors 1.23 > 1", "<= 1"),
    (metric("errors", lo=5), 1.0, False, "errors 1.00 < 5", ">= 5"),
    (metric("big", hi=1e6), 2e6, False, "big 2000000.00 > 1e+06", "<= 1e+06"),
    (metric("errors", threshold=1), 1.0, True, "", "<= 1"),  # legacy: maximum
    (metric("errors", threshold=1), 1.5, False, "errors 1.50 > 1", "<= 1"),
])
def test_custom(m: MetricSpec, value: float, passed: bool, message: str, threshold: str) -> None:
    assert thresholds.custom(value, m) == thresholds.Outcome(passed, message, threshold)
