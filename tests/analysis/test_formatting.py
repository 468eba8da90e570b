"""Go ``%v`` floats and ``Duration.String`` as used in Flagger's Halt texts."""

import math

import pytest

from canaryd.analysis.thresholds import go_duration_ms
from canaryd.engine.messages import go_duration, go_float


@pytest.mark.parametrize(("value", "text"), [
    (99.0, "99"), (99.5, "99.5"), (1e6, "1e+06"), (1234567.0, "1.234567e+06"), (0.00001, "1e-05"),
    (0.0001, "0.0001"), (123456.0, "123456"), (0.5, "0.5"), (100.0, "100"), (1e21, "1e+21"),
    (-2.5, "-2.5"), (1.5e-7, "1.5e-07"), (69.17, "69.17"), (0.1 + 0.2, "0.30000000000000004"),
    (0.0, "0"), (-0.0, "-0"), (1e100, "1e+100"), (999999.0, "999999"), (math.inf, "+Inf"),
    (-math.inf, "-Inf"), (math.nan, "NaN"), (12.0, "12"), (120.0, "120"), (0.012, "0.012"),
])
def test_go_float(value: float, text: str) -> None:
    assert go_float(value) == text


@pytest.mark.parametrize(("ns", "text"), [
    (0, "0s"), (1, "1ns"), (750, "750ns"), (1_500, "1.5µs"), (500_000_000, "500ms"),
    (1_515_000_000, "1.515s"), (1_000_000_000, "1s"), (90_000_000_000, "1m30s"),
    (60_000_000_000, "1m0s"), (3_600_000_000_000, "1h0m0s"), (61_500_000_000, "1m1.5s"),
    (-500_000_000, "-500ms"), (3_723_000_000_000, "1h2m3s"), (1_000_001, "1.000001ms"),
])
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


@pytest.mark.parametrize(("ms", "text"),
                         [(1515.9, "1.515s"), (500.0, "500ms"), (0.4, "0s"), (90000, "1m30s")])
def test_go_duration_ms_truncates(ms: float, text: str) -> None:
    assert go_duration_ms(ms) == text
