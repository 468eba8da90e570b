"""Which session-affinity cookies (``analysis.sessionAffinity``) a Canary's routes and status carry, as
pure functions of (spec, status, weight).

While a run sends the canary traffic, the canary's responses on the weighted route set a cookie and a
route ahead of it sends every request carrying that cookie to the canary, so a user who reached the new
version once stays on it. Once traffic is back at 0 % the cookie of the finished run is matched and
expired. The routes themselves are built by canaryd/actuators/affinity.py from the :class:`Cookies`
decided here.

Flagger draws the cookie value at random and keeps it in status. canaryd derives it from the Canary's
uid and the revision under analysis (``status.lastAppliedSpec``) instead: the same run always yields
the same cookie, so a restart or a replayed write never re-issues cookies. The cookies are still written
to Flagger's status fields (:func:`status_cookies`) for tools that read them.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from canaryd.engine.types import CanaryStatus, Phase
from canaryd.model.routes import Cookies
from canaryd.model.spec import CanarySpec

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# phases whose weight-0 routes follow a run that has just ended with the revision in lastAppliedSpec
_ENDED = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.PROMOTING, Phase.FINALISING})
# phases where lastAppliedSpec is a run that has not sent traffic yet; the previous run was the promoted one
_STARTING = frozenset({Phase.PROGRESSING, Phase.WAITING, Phase.WAITING_PROMOTION})


def cookie_value(uid: str, revision: str, cookie_name: str) -> str:
    """Ten letters (Flagger's alphabet and length), fixed for one Canary, revision and cookie name."""
    digest = hashlib.sha256(f"{uid}/{revision}/{cookie_name}".encode()).digest()
    return "".join(_LETTERS[b % len(_LETTERS)] for b in digest[:10])


def _pair(spec: CanarySpec, revision: str, name: str) -> str:
    return f"{name}={cookie_value(spec.uid, revision, name)}" if name and revision else ""


def cookies_for(spec: CanarySpec, status: CanaryStatus, canary_weight: int) -> Cookies | None:
    """The cookies of the routes for ``canary_weight``; None when the Canary has no session affinity."""
    sa = spec.analysis.session_affinity
    if sa is None:
        return None
    name, primary_name = str(sa.get("cookieName") or ""), str(sa.get("primaryCookieName") or "")
    if canary_weight > 0:
        run = status.last_applied_spec
        return Cookies(canary=_pair(spec, run, name), primary=_pair(spec, run, primary_name))
    previous = ""
    if status.phase in _ENDED:
        previous = _pair(spec, status.last_applied_spec, name)
    elif status.phase in _STARTING and status.last_promoted_spec != status.last_applied_spec:
        previous = _pair(spec, status.last_promoted_spec, name)
    return Cookies(previous=previous)


def status_cookies(spec: CanarySpec, status: CanaryStatus) -> CanaryStatus:
    """``status`` with Flagger's ``sessionAffinityCookie``, ``primarySessionAffinityCookie`` (while the
    canary has traffic) and ``previousSessionAffinityCookie`` (the last run's cookie) set ("" = absent)."""
    now = cookies_for(spec, status, status.canary_weight)
    if now is None:
        return replace(status, session_affinity_cookie="", primary_session_affinity_cookie="",
                       previous_session_affinity_cookie="")
    previous = now.previous
    if now.canary and status.last_promoted_spec != status.last_applied_spec:
        name = str((spec.analysis.session_affinity or {}).get("cookieName") or "")
        previous = _pair(spec, status.last_promoted_spec, name)
    return replace(status, session_affinity_cookie=now.canary, primary_session_affinity_cookie=now.primary,
                   previous_session_affinity_cookie=previous)
