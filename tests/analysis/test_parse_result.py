"""Flagger's result rules for instant queries (flagger-reference.md §5.2), on literal Prometheus answers."""

import pytest

from canaryd.analysis.prometheus import NoValuesFound, PrometheusBadResponse, parse_result


def vector(*values: str) -> bytes:
    items = ",".join(f'{{"metric":{{"i":"{i}"}},"value":[1700000000.1,"{v}"]}}' for i, v in enumerate(values))
    return f'{{"status":"success","data":{{"resultType":"vector","result":[{items}]}}}}'.encode()


@pytest.mark.parametrize(("body", "value"), [
    (vector("99.5"), 99.5),
    (vector("1", "2", "3"), 3.0),  # the last element wins
    (vector("+Inf"), float("inf")),
    (b'{"status":"success","data":{"resultType":"scalar","result":[1700000000,"1"]}}', 1.0),
])
def test_values(body: bytes, value: float) -> None:
    assert parse_result(body) == value


@pytest.mark.parametrize("body", [vector(), vector("NaN"), vector("1", "NaN")])
def test_no_values(body: bytes) -> None:
    with pytest.raises(NoValuesFound, match=r"^no values found$"):
        parse_result(body)


def test_matrix_is_an_error() -> None:
    body = b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]]}]}}'
    with pytest.raises(PrometheusBadResponse, match=r"^query returned multiple values$"):
        parse_result(body)


@pytest.mark.parametrize("body", [b"not json", b'{"status":"success"}', vector("abc")])
def test_unreadable(body: bytes) -> None:
    with pytest.raises(PrometheusBadResponse, match="http://p:9090"):
        parse_result(body, "http://p:9090")
