"""When a readiness wait is worth a status write and a Warning Event. canaryd sees every state a rollout
passes through (Flagger only the one its next tick meets), and most last a fraction of a second: the
Deployment controller not having observed our own change yet, "0 out of 1 new replicas have been updated",
"1 old replicas are pending termination". Reporting each was a status write and a Warning Event that
nobody could act on (up to three of each per canary per run on the benchmark). A wait is reported, once
per distinct message as before, only once it has lasted ``NOT_READY_GRACE`` seconds; the task wakes then to
look again, so a stuck rollout is still reported, a few seconds later than before but never later than
Flagger, whose ticks (every analysis interval, 10 s at least) are what make it report a wait at all. The
progress deadline is unchanged: it runs from ``waitingSince``, which is still written when the wait
begins."""

from __future__ import annotations

from canaryd.engine.builder import Builder

NOT_READY_GRACE = 5.0  # seconds: half of Flagger's shortest tick


def report_wait(b: Builder, msg: str, *, since: float, quiet: bool) -> None:
    """Put a not-ready ``msg`` in status.message (and a Warning Event unless ``quiet``: our own change the
    Deployment controller has not observed yet) when it is new and the wait began ``NOT_READY_GRACE`` s
    ago or more; earlier, only ask to be woken at that time."""
    if msg == b.st.message:
        return
    due = since + NOT_READY_GRACE
    if b.now < due:
        b.wake_by(due)
        return
    b.set(message=msg)
    if not quiet:
        b.emit(msg, warning=True)
