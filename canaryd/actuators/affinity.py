"""Session affinity routes (``analysis.sessionAffinity``, flagger-reference.md §4.4), as pure functions.

While a run sends the canary traffic, the canary's responses on the weighted route set a cookie and a
route ahead of it sends every request carrying that cookie to the canary, so a user who reached the new
version once stays on it. Once traffic is back at 0 % the cookie of the finished run is matched and
expired (``Max-Age=-1``). Which cookies (and their values) is decided by the engine
(canaryd/engine/cookies.py) and given here as :class:`~canaryd.model.routes.Cookies`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from canaryd.model.routes import Cookies
from canaryd.model.spec import CanarySpec

JSON = dict[str, Any]

STICKY_ROUTE = "sticky-route"  # Flagger's name of the cookie route to the canary
STICKY_PRIMARY_ROUTE = "sticky-primary-route"
SET_COOKIE = "Set-Cookie"
DEFAULT_MAX_AGE = 86400


def set_cookie(cookie: str, attributes: Mapping[str, Any], max_age: int) -> str:
    """``<name>=<value>; Max-Age=<n>[; Domain=d][; HttpOnly][; Partitioned][; Path=p][; SameSite=s]
    [; Secure]`` (Flagger's attribute order)."""
    parts = [cookie, f"Max-Age={max_age}"]
    if attributes.get("domain"):
        parts.append(f"Domain={attributes['domain']}")
    if attributes.get("httpOnly"):
        parts.append("HttpOnly")
    if attributes.get("partitioned"):
        parts.append("Partitioned")
    if attributes.get("path"):
        parts.append(f"Path={attributes['path']}")
    if attributes.get("sameSite"):
        parts.append(f"SameSite={attributes['sameSite']}")
    if attributes.get("secure"):
        parts.append("Secure")
    return "; ".join(parts)


def cookie_match(cookie: str, service_match: Sequence[JSON]) -> list[JSON]:
    """A ``Cookie`` header regex ``.*<name>.*<value>.*``, crossed with the service's match blocks (each
    keeps its other conditions, its headers replaced, as in the A/B merge)."""
    name, _, value = cookie.partition("=")
    block: JSON = {"headers": {"Cookie": {"regex": f".*{name}.*{value}.*"}}}
    if not service_match:
        return [block]
    merged = []
    for sm in service_match:
        m = copy.deepcopy(sm)
        m["headers"] = copy.deepcopy(block["headers"])
        merged.append(m)
    return merged


def _with_response_cookie(holder: JSON, value: str) -> JSON:
    """``holder`` (a route or a destination) with ``headers.response.add["Set-Cookie"] = value``."""
    out = copy.deepcopy(holder)
    headers = out.setdefault("headers", {})
    response = headers.setdefault("response", {})
    response["add"] = {**(response.get("add") or {}), SET_COOKIE: value}
    return out


def _sticky(weighted: JSON, name: str, match: list[JSON], route: list[JSON]) -> JSON:
    """A copy of the weighted route's options under ``name`` with its own match and destinations."""
    out: JSON = {"name": name}
    out.update({k: copy.deepcopy(v) for k, v in weighted.items() if k not in ("route", "match", "mirror",
                                                                                "mirrorPercentage")})
    out["match"] = match
    out["route"] = route
    return out


def _dest(weighted: JSON, host: str, weight: int) -> JSON:
    for d in weighted.get("route") or []:
        if (d.get("destination") or {}).get("host") == host:
            return {**copy.deepcopy(d), "weight": weight}
    return {"destination": {"host": host}, "weight": weight}


def http_routes(spec: CanarySpec, weighted: JSON, primary_host: str, canary_host: str,
                cookies: Cookies | None) -> list[JSON]:
    """The ``http`` list replacing ``[weighted]`` for a Canary with session affinity: while the canary
    has traffic ``[sticky canary, (sticky primary), weighted with Set-Cookie]``; at 0 % ``[expiry of the
    previous cookie, weighted]``, or ``[weighted]`` when there is no previous cookie."""
    sa = spec.analysis.session_affinity
    if sa is None or cookies is None:
        return [weighted]
    service_match = list(spec.service.match)
    if cookies.canary:
        max_age = int(sa.get("maxAge") or DEFAULT_MAX_AGE)
        dests = []
        for d in weighted.get("route") or []:
            host = (d.get("destination") or {}).get("host")
            if host == canary_host:
                d = _with_response_cookie(d, set_cookie(cookies.canary, sa, max_age))
            elif host == primary_host and cookies.primary:
                interval = int(spec.analysis.interval_seconds)
                d = _with_response_cookie(d, set_cookie(cookies.primary, sa, interval))
            dests.append(d)
        routes = [_sticky(weighted, STICKY_ROUTE, cookie_match(cookies.canary, service_match),
                          [_dest(weighted, primary_host, 0), _dest(weighted, canary_host, 100)])]
        if cookies.primary:
            primary_match = cookie_match(cookies.primary, service_match)
            routes.append(_sticky(weighted, STICKY_PRIMARY_ROUTE, primary_match,
                                  [_dest(weighted, primary_host, 100), _dest(weighted, canary_host, 0)]))
        return [*routes, {**weighted, "route": dests}]
    if cookies.previous:
        expiry = _sticky(weighted, STICKY_ROUTE, cookie_match(cookies.previous, service_match),
                         copy.deepcopy(weighted.get("route") or []))
        return [_with_response_cookie(expiry, f"{cookies.previous}; Max-Age=-1"), weighted]
    return [weighted]
