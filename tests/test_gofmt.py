"""Go ``%v`` of a float64 and ``time.Duration.String()`` (outputs recorded from Go 1.26 ``fmt``/``time``)."""

from __future__ import annotations

import math

import pytest

from canaryd.gofmt import go_duration, go_duration_seconds, go_float

GO_FLOAT_V = [
    (99.0, "99"), (99.5, "99.5"), (1e6, "1e+06"), (1234567.0, "1.234567e+06"), (0.00001, "1e-05"),
    (0.0001, "0.0001"), (123456.0, "123456"), (0.5, "0.5"), (100.0, "100"), (1e20, "1e+20"), (1e21, "1e+21"),
    (-2.5, "-2.5"), (1.5e-7, "1.5e-07"), (69.17, "69.17"), (0.3, "0.3"), (0.1 + 0.2, "0.30000000000000004"),
    (12345678.9, "1.23456789e+07"), (5e-324, "5e-324"), (0.0, "0"), (-0.0, "-0"), (1e100, "1e+100"),
    (999999.0, "999999"), (math.inf, "+Inf"), (-math.inf, "-Inf"), (math.nan, "NaN"), (12.0, "12"),
    (120.0, "120"), (0.012, "0.012"),
]


@pytest.mark.parametrize(("value", "text"), GO_FLOAT_V)
def test_go_float_v(value: float, text: str) -> None:
    assert go_float(value) == text


GO_DURATION = [
    (0, "0s"), (1, "1ns"), (750, "750ns"), (1_500, "1.5µs"), (1_500_000, "1.5ms"), (1_000_001, "1.000001ms"),
    (500_000_000, "500ms"), (1_000_000_000, "1s"), (1_001_000_000, "1.001s"), (1_515_000_000, "1.515s"),
    (60_000_000_000, "1m0s"), (61_500_000_000, "1m1.5s"), (90_000_000_000, "1m30s"),
    (120_500_000_000, "2m0.5s"),
    (3_600_000_000_000, "1h0m0s"), (3_723_000_000_000, "1h2m3s"), (360_000_000_000_000, "100h0m0s"),
    (-500_000_000, "-500ms"), (-90_000_000_000, "-1m30s"),
]


@pytest.mark.parametrize(("ns", "text"), GO_DURATION)
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


@pytest.mark.parametrize(("seconds", "text"), [(1.515, "1.515s"), (0.5, "500ms"), (90, "1m30s")])
def test_go_duration_seconds(seconds: float, text: str) -> None:
    assert go_duration_seconds(seconds) == text
