"""Splitting a late step into the operator's, the API server's and the watch's share (bench/lateparts.py):
plain tables of wall-clock stamps."""

from __future__ import annotations

import pytest

from bench.lateparts import LateStep, slowest, split

WRITES = [(100.0, 100.1), (160.2, 167.0), (220.0, 220.05)]  # (received, completed)


@pytest.mark.parametrize(("seen", "due", "want"), [
    # due 160, the write received at 160.2 and answered at 167.0, seen at 167.1: the server's 6.8 s
    (167.1, 160.0, LateStep(7.1, 0.2, 6.8, 0.1)),
    # seen before the slow write completed: the previous write is older than the due time → nothing to split
    (166.0, 160.0, None),
    # the last write completed by the time it was seen is the step's, even with older ones before it
    (220.25, 219.5, LateStep(0.75, 0.5, 0.05, 0.2)),
    # no write at all before it was seen
    (99.0, 98.0, None),
])
def test_split(seen: float, due: float, want: LateStep | None) -> None:
    got = split(seen, due, WRITES)
    if want is None:
        assert got is None
    else:
        assert got is not None
        assert (got.lateness, got.before, got.server, got.delivery) == pytest.approx(
            (want.lateness, want.before, want.server, want.delivery))


def test_slowest_is_the_latest_share_and_never_empty_for_some_steps() -> None:
    steps = [LateStep(float(i), 0.0, 0.0, 0.0) for i in range(250)]
    assert [s.lateness for s in slowest(steps)] == [247.0, 248.0, 249.0]  # 1 % of 250, rounded up
    assert [s.lateness for s in slowest(steps[:10])] == [9.0]
    assert slowest([]) == []
