"""Which session-affinity cookies the engine decides for a Canary's routes and status (engine/cookies.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from canaryd.engine.cookies import cookie_value, cookies_for, status_cookies
from canaryd.engine.decide import decide_invalid
from canaryd.engine.status import status_to_dict
from canaryd.engine.types import CanaryStatus, Phase
from canaryd.model.routes import Cookies
from tests.actuators.fixtures import UID, tutorial_spec, with_analysis

COOKIE_FIELDS = ("sessionAffinityCookie", "primarySessionAffinityCookie", "previousSessionAffinityCookie")


def sa_spec(**sa: Any) -> Any:
    spec = tutorial_spec(gateways=(), hosts=())
    return with_analysis(spec, interval_seconds=15, session_affinity={"cookieName": "canary-cookie", **sa})


def status_fields(spec: Any, status: CanaryStatus) -> dict[str, Any]:
    """The cookie fields of the ``.status`` body the engine writes for ``status``."""
    body = status_to_dict(status_cookies(spec, status))
    return {k: body[k] for k in COOKIE_FIELDS if k in body}


def test_cookie_value_is_ten_letters_fixed_per_run() -> None:
    a = cookie_value(UID, "cd1:r1", "canary-cookie")
    assert len(a) == 10 and a.isalpha() and a.isascii()
    assert a == cookie_value(UID, "cd1:r1", "canary-cookie")
    assert a != cookie_value(UID, "cd1:r2", "canary-cookie")
    assert a != cookie_value("other-uid", "cd1:r1", "canary-cookie")


def c(revision: str, name: str = "canary-cookie") -> str:
    return f"{name}={cookie_value(UID, revision, name)}"


def st(phase: Phase, weight: int = 0, applied: str = "r2", promoted: str = "r1") -> CanaryStatus:
    return CanaryStatus(phase=phase, canary_weight=weight, last_applied_spec=applied,
                        last_promoted_spec=promoted)


@pytest.mark.parametrize(
    ("status", "weight", "expected"),
    [
        (st(Phase.PROGRESSING, 10), 10, Cookies(canary=c("r2"))),
        (st(Phase.PROGRESSING), 0, Cookies(previous=c("r1"))),  # a new run: the last promoted run's cookie
        (st(Phase.SUCCEEDED, applied="r2", promoted="r2"), 0, Cookies(previous=c("r2"))),
        (st(Phase.FAILED), 0, Cookies(previous=c("r2"))),  # the failed run's cookie
        (st(Phase.FINALISING), 0, Cookies(previous=c("r2"))),
        (st(Phase.INITIALIZED, applied="r1", promoted="r1"), 0, Cookies()),  # no run yet: nothing to expire
        (st(Phase.PROMOTING, 100), 100, Cookies(canary=c("r2"))),
    ],
)
def test_cookies_for(status: CanaryStatus, weight: int, expected: Cookies) -> None:
    assert cookies_for(sa_spec(), status, weight) == expected


def test_no_session_affinity_no_cookies() -> None:
    spec = tutorial_spec()
    assert cookies_for(spec, st(Phase.PROGRESSING, 10), 10) is None
    assert status_fields(spec, st(Phase.PROGRESSING, 10)) == {}
    assert status_cookies(spec, replace(st(Phase.PROGRESSING, 10), session_affinity_cookie="x=y")) == \
        st(Phase.PROGRESSING, 10)


def test_primary_cookie_while_canary_has_traffic() -> None:
    got = cookies_for(sa_spec(primaryCookieName="primary-cookie"), st(Phase.PROGRESSING, 10), 10)
    assert got == Cookies(canary=c("r2"), primary=c("r2", "primary-cookie"))


@pytest.mark.parametrize(
    ("status", "fields"),
    [
        (st(Phase.PROGRESSING, 10),
         {"sessionAffinityCookie": c("r2"), "previousSessionAffinityCookie": c("r1")}),
        (st(Phase.SUCCEEDED, applied="r2", promoted="r2"), {"previousSessionAffinityCookie": c("r2")}),
        (st(Phase.INITIALIZED, applied="r1", promoted="r1"), {}),
    ],
)
def test_status_fields(status: CanaryStatus, fields: dict[str, str]) -> None:
    assert status_fields(sa_spec(), status) == fields


def test_cookie_fields_are_written_with_a_status_change_only() -> None:
    """The engine sets them when it writes status (never a write of its own); an invalid spec drops them."""
    spec = sa_spec()
    before = CanaryStatus(phase=Phase.PROGRESSING, canary_weight=10, last_applied_spec="r2",
                          last_promoted_spec="r1", session_affinity_cookie=c("r2"))
    invalid = decide_invalid(before, "bad", 1.0).status
    assert invalid is not None and invalid.session_affinity_cookie == ""
    assert status_cookies(spec, invalid).session_affinity_cookie == c("r2")
