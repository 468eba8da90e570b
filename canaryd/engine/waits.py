"""When a readiness wait is worth a status write and a Warning Event. canaryd sees every state a rollout
passes through (Flagger only the one its next tick meets), and most last a fraction of a second: the
Deployment controller not having observed our own change yet, "0 out of 1 new replicas have been updated",
"1 old replicas are pending termination". Reporting each was a status write and a Warning Event that
nobody could act on (up to three of each per canary per run on the benchmark). A wait is reported, once
per distinct message, only once it has lasted one analysis interval (``report_after``): that is when
Flagger's next tick would first meet it, so a rollout that finishes within an interval costs neither a write
nor an Event, as with Flagger, and one that lasts is reported when Flagger would report it. The task wakes
then to look again. The progress deadline is unchanged: it runs from ``waitingSince``, which is still
written when the wait begins."""

from __future__ import annotations

from canaryd.engine.builder import Builder

NOT_READY_GRACE = 5.0  # seconds: the shortest wait ever reported, whatever the interval


def report_after(interval: float) -> float:
    """Seconds a wait lasts before it is reported: one analysis interval, at least ``NOT_READY_GRACE``."""
    return max(NOT_READY_GRACE, interval)


def report_wait(b: Builder, msg: str, *, since: float, quiet: bool) -> None:
    """Put a not-ready ``msg`` in status.message (and a Warning Event unless ``quiet``: our own change the
    Deployment controller has not observed yet) when it is new and the wait began ``report_after`` the
    interval ago or more; earlier, only ask to be woken at that time."""
    if msg == b.st.message:
        return
    due = since + report_after(b.interval)
    if b.now < due:
        b.wake_by(due)
        return
    b.set(message=msg)
    if not quiet:
        b.emit(msg, warning=True)
