"""Session affinity VirtualService shapes (flagger-reference.md §4.4) from the cookies the engine decides
(their decision: tests/engine/test_cookies.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from canaryd.actuators import istio_objects
from canaryd.actuators.affinity import set_cookie
from canaryd.engine.cookies import cookie_value
from canaryd.model.routes import Cookies
from tests.actuators.fixtures import UID, tutorial_spec, with_analysis


def sa_spec(**sa: Any) -> Any:
    spec = tutorial_spec(gateways=(), hosts=())
    return with_analysis(spec, interval_seconds=15, session_affinity={"cookieName": "canary-cookie", **sa})


def c(revision: str, name: str = "canary-cookie") -> str:
    return f"{name}={cookie_value(UID, revision, name)}"


@pytest.mark.parametrize(
    ("sa", "max_age", "expected"),
    [
        ({}, 86400, "k=v; Max-Age=86400"),
        ({"domain": "flagger.app", "httpOnly": True, "partitioned": True, "path": "/app",
          "sameSite": "Strict", "secure": True}, 300,
         "k=v; Max-Age=300; Domain=flagger.app; HttpOnly; Partitioned; Path=/app; SameSite=Strict; Secure"),
        ({"httpOnly": False, "sameSite": "Lax"}, 5, "k=v; Max-Age=5; SameSite=Lax"),
    ],
)
def test_set_cookie_attributes(sa: dict[str, Any], max_age: int, expected: str) -> None:
    assert set_cookie("k=v", sa, max_age) == expected


def test_vs_while_canary_has_traffic_exact() -> None:
    spec = sa_spec(maxAge=300)
    cookie = c("r2")
    value = cookie.split("=", 1)[1]
    vs = istio_objects.virtual_service_spec(spec, 90, 10, cookies=Cookies(canary=cookie))
    assert vs["http"] == [
        {
            "name": "sticky-route",
            "match": [{"headers": {"Cookie": {"regex": f".*canary-cookie.*{value}.*"}}}],
            "route": [{"destination": {"host": "podinfo-primary"}, "weight": 0},
                      {"destination": {"host": "podinfo-canary"}, "weight": 100}],
        },
        {
            "route": [
                {"destination": {"host": "podinfo-primary"}, "weight": 90},
                {"destination": {"host": "podinfo-canary"}, "weight": 10,
                 "headers": {"response": {"add": {"Set-Cookie": f"{cookie}; Max-Age=300"}}}},
            ],
        },
    ]
    # the observed weights are read from the weighted route, not the sticky one
    assert istio_objects.routes_of({"metadata": {"name": "podinfo"}, "spec": vs}) == (90, 10, False)


def test_vs_with_primary_cookie_and_service_options() -> None:
    spec = sa_spec(primaryCookieName="primary-cookie")
    spec = replace(spec, service=replace(spec.service, match=({"uri": {"prefix": "/api"}},), timeout="5s"))
    cookies = Cookies(canary=c("r2"), primary=c("r2", "primary-cookie"))
    http = istio_objects.virtual_service_spec(spec, 70, 30, cookies=cookies)["http"]
    assert [r.get("name") for r in http] == ["sticky-route", "sticky-primary-route", None]
    sticky, sticky_primary, weighted = http
    # the cookie match keeps the service match's other conditions; route options are carried over
    pvalue = cookies.primary.split("=", 1)[1]
    assert sticky_primary["match"] == [
        {"uri": {"prefix": "/api"}, "headers": {"Cookie": {"regex": f".*primary-cookie.*{pvalue}.*"}}}
    ]
    assert sticky["timeout"] == sticky_primary["timeout"] == weighted["timeout"] == "5s"
    assert [d["weight"] for d in sticky_primary["route"]] == [100, 0]
    assert weighted["match"] == [{"uri": {"prefix": "/api"}}]
    primary_dest = weighted["route"][0]
    # the primary's cookie lives one analysis interval
    assert primary_dest["headers"] == {"response": {"add": {"Set-Cookie": f"{cookies.primary}; Max-Age=15"}}}
    assert weighted["route"][1]["headers"] == {
        "response": {"add": {"Set-Cookie": f"{cookies.canary}; Max-Age=86400"}}
    }


def test_vs_at_zero_expires_previous_cookie() -> None:
    spec = sa_spec()
    spec = replace(spec, service=replace(spec.service, headers={"response": {"add": {"x-a": "1"}}}))
    previous = c("r1")
    http = istio_objects.virtual_service_spec(spec, 100, 0, cookies=Cookies(previous=previous))["http"]
    expiry, weighted = http
    assert expiry["name"] == "sticky-route"
    assert expiry["headers"] == {"response": {"add": {"x-a": "1", "Set-Cookie": f"{previous}; Max-Age=-1"}}}
    assert [d["weight"] for d in expiry["route"]] == [100, 0]
    # the weighted route keeps the service headers untouched
    assert weighted == {"headers": {"response": {"add": {"x-a": "1"}}},
                        "route": [{"destination": {"host": "podinfo-primary"}, "weight": 100},
                                  {"destination": {"host": "podinfo-canary"}, "weight": 0}]}


@pytest.mark.parametrize("cookies", [None, Cookies()])
def test_vs_without_cookies_is_the_single_weighted_route(cookies: Cookies | None) -> None:
    spec = sa_spec()
    assert istio_objects.virtual_service_spec(spec, 100, 0, cookies=cookies)["http"] == \
        istio_objects.virtual_service_spec(tutorial_spec(gateways=(), hosts=()), 100, 0)["http"]


def test_port_discovery_destination_port_kept_on_sticky_routes() -> None:
    spec = sa_spec()
    spec = replace(spec, service=replace(spec.service, port_discovery=True, gateways=("gw/public",)))
    http = istio_objects.virtual_service_spec(spec, 90, 10, cookies=Cookies(canary=c("r2")))["http"]
    for route in http:
        assert all(d["destination"]["port"] == {"number": 9898} for d in route["route"])

