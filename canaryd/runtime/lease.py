"""The pure half of leader election: the timings and where the Lease is (:class:`ElectionConfig`), who may
take the lease (:func:`judge` on a :class:`LeaseRecord` seen unchanged since :func:`observed_since`), when
a leader must stop (:func:`renewal_lost`), and the Lease bodies written (:func:`lease_body`,
:func:`released_body`).

No I/O and no clock of its own (every time is passed in, monotonic and local), so the rules that keep two
replicas from both acting are tested with tables; ``leader`` does the I/O and the timing around them.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from canaryd.kube import resources as r

LEASE_NAME = "canaryd-leader"
DEFAULT_NAMESPACE = "canaryd-system"
SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True)
class ElectionConfig:
    """Where the lease is and the three timings of client-go's leader election (same meaning)."""

    namespace: str
    identity: str
    name: str = LEASE_NAME
    lease_duration: float = 15.0  # a standby waits this long on an unchanged record before taking it
    renew_deadline: float = 10.0  # the leader steps down when it could not renew for this long
    retry_period: float = 2.0  # between attempts (acquire and renew)

    def __post_init__(self) -> None:
        problem = config_problem(self.lease_duration, self.renew_deadline, self.retry_period)
        if problem:
            raise ValueError(problem)


def config_problem(lease_duration: float, renew_deadline: float, retry_period: float) -> str:
    """Why these timings cannot be safe ("" when they are): the leader must stop before a standby may
    take over, and must get at least one retry within its deadline."""
    if min(lease_duration, renew_deadline, retry_period) <= 0:
        return "lease duration, renew deadline and retry period must be positive"
    if renew_deadline >= lease_duration:
        return (f"renew deadline ({renew_deadline:g}s) must be shorter than the lease duration "
                f"({lease_duration:g}s), or a replica could act after another took the lease")
    if retry_period >= renew_deadline:
        return (f"retry period ({retry_period:g}s) must be shorter than the renew deadline "
                f"({renew_deadline:g}s)")
    return ""


def default_identity() -> str:
    """Hostname (the pod name in a cluster) plus a random suffix: a restarted pod is a new candidate."""
    return f"{socket.gethostname()}_{secrets.token_hex(4)}"


def default_namespace(env: Mapping[str, str] | None = None, sa_file: Path = SA_NAMESPACE_FILE) -> str:
    """The pod's namespace (``POD_NAMESPACE``, else the ServiceAccount's namespace file), else
    ``canaryd-system``."""
    env = os.environ if env is None else env
    if env.get("POD_NAMESPACE"):
        return env["POD_NAMESPACE"]
    try:
        text = sa_file.read_text().strip()
    except OSError:
        text = ""
    return text or DEFAULT_NAMESPACE


@dataclass(frozen=True)
class LeaseRecord:
    """The parts of a Lease the election reads; two records are equal only if nothing was renewed."""

    holder: str
    duration: float  # leaseDurationSeconds, 0 when unset
    renew_time: str
    transitions: int
    resource_version: str

    @classmethod
    def of(cls, lease: Mapping[str, Any]) -> LeaseRecord:
        spec = lease.get("spec") or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            duration=float(spec.get("leaseDurationSeconds") or 0),
            renew_time=str(spec.get("renewTime") or ""),
            transitions=int(spec.get("leaseTransitions") or 0),
            resource_version=str((lease.get("metadata") or {}).get("resourceVersion") or ""),
        )


class Verdict(Enum):
    CREATE = "create"  # no lease yet
    RENEW = "renew"  # we hold it
    TAKE = "take"  # released, or its holder stopped renewing long enough ago
    WAIT = "wait"  # someone else holds it


def observed_since(previous: tuple[LeaseRecord, float] | None, record: LeaseRecord, now: float) -> float:
    """The local (monotonic) time since which ``record`` has been seen unchanged."""
    if previous is not None and previous[0] == record:
        return previous[1]
    return now


def judge(record: LeaseRecord | None, *, identity: str, observed_at: float, now: float,
          default_duration: float) -> Verdict:
    """What a candidate may do with the lease it just read (``now`` and ``observed_at`` on its own
    monotonic clock). The record's own duration wins over ours: its holder promised to renew within it
    (and a released lease says 1 s)."""
    if record is None:
        return Verdict.CREATE
    if record.holder == identity:
        return Verdict.RENEW
    if not record.holder:
        return Verdict.TAKE
    duration = record.duration if record.duration > 0 else default_duration
    return Verdict.TAKE if now - observed_at >= duration else Verdict.WAIT


def renewal_lost(last_renewed: float, now: float, renew_deadline: float) -> bool:
    """A leader that has not renewed for ``renew_deadline`` must stop acting (monotonic clock)."""
    return now - last_renewed >= renew_deadline


def micro_time(at: datetime) -> str:
    """Kubernetes MicroTime: RFC 3339 in UTC with microseconds."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_body(config: ElectionConfig, current: Mapping[str, Any] | None, at: datetime) -> dict[str, Any]:
    """The Lease to write to acquire or renew it as ``config.identity`` (``current`` None: create)."""
    stamp = micro_time(at)
    if current is None:
        return {
            "apiVersion": r.LEASE.api_version, "kind": r.LEASE.kind,
            "metadata": {"name": config.name, "namespace": config.namespace},
            "spec": {"holderIdentity": config.identity, "leaseDurationSeconds": _seconds(config),
                     "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": 0},
        }
    body = {k: v for k, v in current.items() if k != "status"}
    spec = dict(current.get("spec") or {})
    previous = LeaseRecord.of(current)
    if previous.holder != config.identity:
        spec["acquireTime"] = stamp
        spec["leaseTransitions"] = previous.transitions + (1 if previous.holder else 0)
    spec["holderIdentity"] = config.identity
    spec["leaseDurationSeconds"] = _seconds(config)
    spec["renewTime"] = stamp
    body["spec"] = spec
    return body


def released_body(current: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """The Lease with no holder and a 1 s duration: the next candidate takes it on its next attempt."""
    body = dict(current)
    spec = {k: v for k, v in (current.get("spec") or {}).items() if k != "holderIdentity"}
    spec["leaseDurationSeconds"] = 1
    spec["renewTime"] = micro_time(at)
    body["spec"] = spec
    return body


def _seconds(config: ElectionConfig) -> int:
    return max(1, round(config.lease_duration))
