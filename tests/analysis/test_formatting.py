"""Durations in Flagger's Halt texts (the Go ``fmt`` tables are in ``tests/test_gofmt.py``)."""

import pytest

from canaryd.analysis.thresholds import go_duration_ms


@pytest.mark.parametrize(("ms", "text"),
                         [(1515.9, "1.515s"), (500.0, "500ms"), (0.4, "0s"), (90000, "1m30s")])
def test_go_duration_ms_truncates(ms: float, text: str) -> None:
    assert go_duration_ms(ms) == text
