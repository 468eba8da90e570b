"""Go formatting (outputs recorded from Go 1.26 ``fmt``/``time``) and Flagger's config checksum vectors
(recorded from Go ``json.Marshal`` + sha256)."""

from __future__ import annotations

from typing import Any

import pytest

from canaryd.engine.messages import go_duration, go_duration_seconds, go_float
from canaryd.model.checksum import config_checksum
from canaryd.model.checksum import go_json as go_json_marshal

GO_FLOAT_V = [
    (99, "99"), (99.5, "99.5"), (1e6, "1e+06"), (1234567, "1.234567e+06"), (0.00001, "1e-05"),
    (0.0001, "0.0001"), (123456, "123456"), (1e20, "1e+20"), (1e21, "1e+21"), (69.17, "69.17"), (0.3, "0.3"),
    (100, "100"), (1.5e-7, "1.5e-07"), (12345678.9, "1.23456789e+07"), (-2.5, "-2.5"), (1e100, "1e+100"),
    (5e-324, "5e-324"), (float("nan"), "NaN"), (float("inf"), "+Inf"), (0.0, "0"),
]


@pytest.mark.parametrize(("value", "text"), GO_FLOAT_V)
def test_go_float_v(value: float, text: str) -> None:
    assert go_float(float(value)) == text


GO_DURATION = [
    (1515 * 10**6, "1.515s"), (500 * 10**6, "500ms"), (90 * 10**9, "1m30s"), (3600 * 10**9, "1h0m0s"), (0, "0s"),
    (1500 * 10**3, "1.5ms"), (1, "1ns"), (3723 * 10**9, "1h2m3s"), (-90 * 10**9, "-1m30s"),
    (120 * 10**9 + 500 * 10**6, "2m0.5s"), (1001 * 10**6, "1.001s"), (100 * 3600 * 10**9, "100h0m0s"),
    (1500, "1.5µs"),
]


@pytest.mark.parametrize(("ns", "text"), GO_DURATION)
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


def test_go_duration_seconds() -> None:
    assert go_duration_seconds(1.515) == "1.515s" and go_duration_seconds(0.5) == "500ms"


CHECKSUMS: list[tuple[Any, str, str]] = [
    (None, "null", "74234e98afe7498f"),
    ({}, "{}", "44136fa355b3678a"),
    ({"b": '<a href="x">&</a>', "a": "line1\nline2\t\u2028\u2029\b\f\x01\x7f é 日本 \\ /"},
     '{"a":"line1\\nline2\\t\\u2028\\u2029\\b\\f\\u0001\x7f é 日本 \\\\ /",'
     '"b":"\\u003ca href=\\"x\\"\\u003e\\u0026\\u003c/a\\u003e"}',
     "9e35a08dd439241f"),
    ({"color": "red", "size": "10"}, '{"color":"red","size":"10"}', "28211009e28c3c09"),
    ({"password": "c2VjcmV0", "user": "YWRtaW4="}, '{"password":"c2VjcmV0","user":"YWRtaW4="}', "24fec40781de8af8"),
    ({"Zeta": "1", "alpha": "2", "é": "3", "_x": "4"}, '{"Zeta":"1","_x":"4","alpha":"2","é":"3"}',
     "c05edf14a298bb19"),
]


@pytest.mark.parametrize(("data", "marshalled", "checksum"), CHECKSUMS)
def test_config_checksum_matches_go(data: Any, marshalled: str, checksum: str) -> None:
    assert go_json_marshal(data) == marshalled
    assert config_checksum(data) == checksum
