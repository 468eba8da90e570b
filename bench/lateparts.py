"""Where a late step's time went. A step is due one interval after the previous one was seen; the operator's
Canary status write for it (the first write of its pass) is then found in the audit log, which splits the
step's lateness in three:

* before: due → the API server received the status write (the operator: its pass began late, took CPU, or
  the request waited for a pooled connection);
* server: received → response complete (the API server and etcd);
* delivery: response complete → the benchmark's watch saw the new status (the watch's own latency).

The parts are computed on wall clocks (the audit log's stamps), the lateness on the monotonic one; they
agree to the clocks' offset, read once per run."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LateStep:
    lateness: float
    before: float
    server: float
    delivery: float


def split(seen: float, due: float, writes: Sequence[tuple[float, float]], *,
          slack: float = 0.5) -> LateStep | None:
    """The step seen (wall clock) at ``seen``, due at ``due``: its status write is the last one completed by
    ``seen`` (``writes``: (received, completed), in completion order). None when no write completed
    between ``due - slack`` and ``seen``: the audit log and the watch disagree, nothing to split."""
    done = [c for _, c in writes]
    i = bisect.bisect_right(done, seen) - 1
    if i < 0 or done[i] < due - slack:
        return None
    got, completed = writes[i]
    return LateStep(seen - due, got - due, completed - got, seen - completed)


def slowest(steps: Sequence[LateStep], share: float = 0.01) -> list[LateStep]:
    """The latest ``share`` of the steps (rounded up): the p99 tail whose cause the report states."""
    if not steps:
        return []
    k = max(1, math.ceil(len(steps) * share))
    return sorted(steps, key=lambda s: s.lateness)[-k:]
