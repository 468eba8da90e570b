"""Flagger's config checksum vectors (recorded from Go ``json.Marshal`` + sha256); the Go ``fmt``
formatting tests are in ``tests/test_gofmt.py``."""

from __future__ import annotations

from typing import Any

import pytest

from canaryd.model.checksum import config_checksum
from canaryd.model.checksum import go_json as go_json_marshal

CHECKSUMS: list[tuple[Any, str, str]] = [
    (None, "null", "74234e98afe7498f"),
    ({}, "{}", "44136fa355b3678a"),
    ({"b": '<a href="x">&</a>', "a": "line1\nline2\t\u2028\u2029\b\f\x01\x7f é 日本 \\ /"},
     '{"a":"line1\\nline2\\t\\u2028\\u2029\\b\\f\\u0001\x7f é 日本 \\\\ /",'
     '"b":"\\u003ca href=\\"x\\"\\u003e\\u0026\\u003c/a\\u003e"}',
     "9e35a08dd439241f"),
    ({"color": "red", "size": "10"}, '{"color":"red","size":"10"}', "28211009e28c3c09"),
    ({"password": "c2VjcmV0", "user": "YWRtaW4="}, '{"password":"c2VjcmV0","user":"YWRtaW4="}',
     "24fec40781de8af8"),
    ({"Zeta": "1", "alpha": "2", "é": "3", "_x": "4"}, '{"Zeta":"1","_x":"4","alpha":"2","é":"3"}',
     "c05edf14a298bb19"),
]


@pytest.mark.parametrize(("data", "marshalled", "checksum"), CHECKSUMS)
def test_config_checksum_matches_go(data: Any, marshalled: str, checksum: str) -> None:
    assert go_json_marshal(data) == marshalled
    assert config_checksum(data) == checksum
