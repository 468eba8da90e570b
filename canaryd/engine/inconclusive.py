"""An inconclusive step holds the run like a gate (docs/verdicts.md): no advance and no rollback, one
``warn`` alert, and ``status.message`` says what it waits for. A person decides with a
``canaryd.io/request`` (promote, abort, or resume to go on with the analysis: engine/requests.py);
otherwise ``analysis.inconclusiveTimeout`` (default: the Canary's ``progressDeadlineSeconds``) rolls
the run back. The hold lives in status (``inconclusiveSince``, and ``nextStepAt`` = its end, which is
also when the task wakes), so a restart keeps waiting for the same decision.
"""

from __future__ import annotations

from canaryd.engine.builder import Builder
from canaryd.engine.outcome import rollback
from canaryd.engine.status import rfc3339
from canaryd.engine.types import CheckResult, Emit
from canaryd.gofmt import go_duration


def timeout(b: Builder) -> float:
    """How long a hold lasts: ``analysis.inconclusiveTimeout``, else ``progressDeadlineSeconds``."""
    t = b.spec.analysis.inconclusive_timeout_seconds
    return t if t is not None else b.deadline


def _text(seconds: float) -> str:
    return go_duration(int(seconds * 1e9))


def hold(b: Builder, waiting: tuple[CheckResult, ...]) -> None:
    """Begin a hold for the inconclusive results of this step."""
    until = b.now + timeout(b)
    what = "; ".join(f"{c.name} {c.message}".rstrip() for c in waiting)
    text = (f"Halt {b.canary_key} advancement inconclusive: {what}; waiting for a promote or abort "
            f"request (canaryd.io/request) until {rfc3339(until)}, then rolling back")
    names = ", ".join(c.name for c in waiting)
    b.emit(text, warning=True, alert="warn",
           alert_message=f"Canary analysis is inconclusive ({names}): promote or abort it "
                         f"within {_text(timeout(b))}")
    b.set(inconclusive_since=b.now, message=text, next_step_at=until)


def wait(b: Builder) -> None:
    """A hold in force: nothing until a request resolves it, or its time is up."""
    since = b.st.inconclusive_since
    assert since is not None
    until = since + timeout(b)
    if b.now < until:
        if b.st.next_step_at != until:  # the timeout was changed in the spec: wake at the new end
            b.set(next_step_at=until)
        return
    b.set(inconclusive_since=None)
    rollback(b, Emit(f"Rolling back {b.canary_key} inconclusive analysis not resolved within "
                     f"{_text(timeout(b))}", warning=True, alert="error",
                     alert_message=f"Inconclusive analysis not resolved within {_text(timeout(b))}"))


def lift(b: Builder) -> None:
    """End a hold (a request decided); the message it set goes with it."""
    if b.st.inconclusive_since is None:
        return
    held = "advancement inconclusive:" in b.st.message
    b.set(inconclusive_since=None, message="" if held else b.st.message)
