"""The pure parts of leader election: who may take the lease (a table over lease states and clocks), when
a leader must stop, what is written, and which timings are refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from canaryd.runtime.lease import (
    DEFAULT_NAMESPACE,
    ElectionConfig,
    LeaseRecord,
    Verdict,
    config_problem,
    default_namespace,
    judge,
    lease_body,
    observed_since,
    released_body,
    renewal_lost,
)

ME = "canaryd-a_1234"
OTHER = "canaryd-b_5678"


def rec(holder: str = OTHER, duration: float = 15, renew: str = "t1", rv: str = "7") -> LeaseRecord:
    return LeaseRecord(holder=holder, duration=duration, renew_time=renew, transitions=0, resource_version=rv)


# (case, record, observed_at, now, expected) — times on the candidate's monotonic clock, our default 15 s
JUDGE = [
    ("no lease: create it", None, 0.0, 100.0, Verdict.CREATE),
    ("we hold it: renew", rec(ME), 0.0, 100.0, Verdict.RENEW),
    ("we hold it, long unrenewed: still ours", rec(ME), 0.0, 1e6, Verdict.RENEW),
    ("released (no holder): take at once", rec(""), 100.0, 100.0, Verdict.TAKE),
    ("released, 1 s duration: take at once", rec("", duration=1), 100.0, 100.0, Verdict.TAKE),
    ("other holder, just seen: wait", rec(), 100.0, 100.0, Verdict.WAIT),
    ("other holder, seen 14.9 s: wait", rec(), 100.0, 114.9, Verdict.WAIT),
    ("other holder, unchanged for 15 s: take", rec(), 100.0, 115.0, Verdict.TAKE),
    ("other holder, unchanged for 60 s: take", rec(), 100.0, 160.0, Verdict.TAKE),
    ("record's duration wins over ours (longer)", rec(duration=30), 100.0, 120.0, Verdict.WAIT),
    ("record's duration wins over ours (shorter)", rec(duration=3), 100.0, 103.0, Verdict.TAKE),
    ("record without duration: ours", rec(duration=0), 100.0, 114.0, Verdict.WAIT),
    ("record without duration, ours passed", rec(duration=0), 100.0, 115.5, Verdict.TAKE),
    ("released by holder: 1 s and no holder", rec("", duration=1, renew="t9"), 100.0, 100.5, Verdict.TAKE),
    ("holder with 1 s duration (released form kept holder)", rec(duration=1), 100.0, 100.5, Verdict.WAIT),
    ("holder with 1 s duration after 1 s", rec(duration=1), 100.0, 101.0, Verdict.TAKE),
]


@pytest.mark.parametrize(("case", "record", "observed_at", "now", "expected"), JUDGE,
                         ids=[j[0] for j in JUDGE])
def test_judge(case: str, record: LeaseRecord | None, observed_at: float, now: float,
               expected: Verdict) -> None:
    got = judge(record, identity=ME, observed_at=observed_at, now=now, default_duration=15.0)
    assert got is expected, case


# the observation clock restarts only when the record changes (renewTime, holder or version)
OBSERVED = [
    ("first sight", None, rec(), 50.0, 50.0),
    ("same record later", (rec(), 10.0), rec(), 50.0, 10.0),
    ("renewed (renewTime)", (rec(), 10.0), rec(renew="t2", rv="8"), 50.0, 50.0),
    ("same renewTime, new version", (rec(), 10.0), rec(rv="9"), 50.0, 50.0),
    ("new holder", (rec(), 10.0), rec(holder="c"), 50.0, 50.0),
]


@pytest.mark.parametrize(("case", "prev", "record", "now", "expected"), OBSERVED,
                         ids=[o[0] for o in OBSERVED])
def test_observed_since(case: str, prev: tuple[LeaseRecord, float] | None, record: LeaseRecord, now: float,
                        expected: float) -> None:
    assert observed_since(prev, record, now) == expected, case


def test_standby_takes_only_after_a_full_duration_without_renewals() -> None:
    """A sequence of reads: the holder renews twice, then stops; the standby takes 15 s after the last
    change it saw, not 15 s after its first read."""
    reads = [(0.0, rec(renew="t1", rv="1")), (2.0, rec(renew="t1", rv="1")), (4.0, rec(renew="t2", rv="2")),
             (6.0, rec(renew="t3", rv="3")), (18.0, rec(renew="t3", rv="3")), (21.0, rec(renew="t3", rv="3"))]
    seen: tuple[LeaseRecord, float] | None = None
    verdicts = []
    for now, record in reads:
        at = observed_since(seen, record, now)
        seen = (record, at)
        verdicts.append(judge(record, identity=ME, observed_at=at, now=now, default_duration=15.0))
    assert verdicts == [Verdict.WAIT] * 5 + [Verdict.TAKE]


RENEWAL = [
    ("just renewed", 100.0, 100.0, False),
    ("9.9 s without renewal", 100.0, 109.9, False),
    ("10 s: deadline reached", 100.0, 110.0, True),
    ("long after", 100.0, 500.0, True),
]


@pytest.mark.parametrize(("case", "last", "now", "lost"), RENEWAL, ids=[x[0] for x in RENEWAL])
def test_renewal_lost(case: str, last: float, now: float, lost: bool) -> None:
    assert renewal_lost(last, now, 10.0) is lost, case


CONFIGS = [
    (15.0, 10.0, 2.0, ""),
    (3.0, 2.0, 0.5, ""),
    (10.0, 10.0, 2.0, "renew deadline (10s) must be shorter than the lease duration (10s)"),
    (10.0, 12.0, 2.0, "renew deadline (12s) must be shorter"),
    (15.0, 10.0, 10.0, "retry period (10s) must be shorter than the renew deadline (10s)"),
    (15.0, 10.0, 0.0, "must be positive"),
    (-1.0, 10.0, 2.0, "must be positive"),
]


@pytest.mark.parametrize(("duration", "deadline", "retry", "problem"), CONFIGS)
def test_config_problem(duration: float, deadline: float, retry: float, problem: str) -> None:
    got = config_problem(duration, deadline, retry)
    assert (problem in got) if problem else got == ""
    if problem:
        with pytest.raises(ValueError, match="must be"):
            ElectionConfig(namespace="ns", identity=ME, lease_duration=duration, renew_deadline=deadline,
                           retry_period=retry)


AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
CFG = ElectionConfig(namespace="canaryd-system", identity=ME, lease_duration=15, renew_deadline=10,
                     retry_period=2)


def lease(holder: str | None, transitions: int = 2, acquire: str = "old") -> dict[str, object]:
    spec: dict[str, object] = {"leaseDurationSeconds": 15, "acquireTime": acquire, "renewTime": "old",
                               "leaseTransitions": transitions}
    if holder is not None:
        spec["holderIdentity"] = holder
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "canaryd-leader", "namespace": "canaryd-system", "resourceVersion": "41"},
            "spec": spec}


BODIES = [
    # (case, current, holder, acquireTime, transitions)
    ("create", None, ME, "2026-01-02T03:04:05.678901Z", 0),
    ("renew keeps acquireTime and transitions", lease(ME), ME, "old", 2),
    ("take from another: a transition", lease(OTHER), ME, "2026-01-02T03:04:05.678901Z", 3),
    ("take a released lease: no holder to count", lease(None), ME, "2026-01-02T03:04:05.678901Z", 2),
]


@pytest.mark.parametrize(("case", "current", "holder", "acquire", "transitions"), BODIES,
                         ids=[b[0] for b in BODIES])
def test_lease_body(case: str, current: dict[str, object] | None, holder: str, acquire: str,
                    transitions: int) -> None:
    body = lease_body(CFG, current, AT)
    spec = body["spec"]
    assert spec["holderIdentity"] == holder
    assert spec["renewTime"] == "2026-01-02T03:04:05.678901Z"
    assert spec["acquireTime"] == acquire
    assert spec["leaseTransitions"] == transitions
    assert spec["leaseDurationSeconds"] == 15
    assert body["metadata"]["name"] == "canaryd-leader"
    if current is not None:  # optimistic concurrency: the version we read goes back
        assert body["metadata"]["resourceVersion"] == "41"


def test_released_body_clears_holder_and_shortens_duration() -> None:
    body = released_body(lease(ME), AT)
    assert "holderIdentity" not in body["spec"]
    assert body["spec"]["leaseDurationSeconds"] == 1
    assert body["metadata"]["resourceVersion"] == "41"
    assert LeaseRecord.of(body).holder == ""


@pytest.mark.parametrize(("env", "file_text", "expected"), [
    ({"POD_NAMESPACE": "ops"}, "from-file", "ops"),
    ({}, "from-file\n", "from-file"),
    ({}, None, DEFAULT_NAMESPACE),
    ({"POD_NAMESPACE": ""}, "", DEFAULT_NAMESPACE),
])
def test_default_namespace(tmp_path: Path, env: dict[str, str], file_text: str | None, expected: str) -> None:
    path = tmp_path / "namespace"
    if file_text is not None:
        path.write_text(file_text)
    assert default_namespace(env, path) == expected
