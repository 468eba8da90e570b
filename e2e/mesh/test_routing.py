"""Tables for the simulator's pure routing decisions (no bed needed: these run in milliseconds)."""

from __future__ import annotations

from typing import Any

import pytest

from e2e.mesh import view
from e2e.mesh.routing import (
    RequestView,
    choose_route,
    delegate_of,
    image_tag,
    mirror_of,
    parse_host,
    pick_destination,
    pick_workload,
    request_keys,
    request_matches,
    response_headers,
    rewritten_path,
    vs_host_key,
    workload_behaviour,
    workloads_for_service,
)


def deployment(
    name: str,
    labels: dict[str, str],
    available: int | None = 1,
    image: str = "r/podinfo:6.0.0",
    env: dict[str, str] | None = None,
    ns: str = "test",
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    status = {} if available is None else {"availableReplicas": available}
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}},
        "status": status,
    }


def service(name: str, selector: dict[str, str] | None, ns: str = "test") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"selector": selector}}


def req(
    path: str = "/", headers: dict[str, str] | None = None, method: str = "GET", authority: str = "podinfo"
) -> RequestView:
    return RequestView(method, path, authority, headers or {})


@pytest.mark.parametrize(
    "header,ns,name,namespace",
    [
        ("podinfo-canary:9898", "test", "podinfo-canary", "test"),
        ("podinfo-canary", None, "podinfo-canary", None),
        ("Podinfo.Test", None, "podinfo", "test"),
        ("podinfo.test:9898", "other", "podinfo", "test"),
        ("podinfo.test.svc", None, "podinfo", "test"),
        ("podinfo.test.svc.cluster.local:9898", None, "podinfo", "test"),
        ("app.example.com", "test", "app.example.com", None),
        ("app.example.com:80", None, "app.example.com", None),
        ("127.0.0.1:8080", "test", "127.0.0.1", None),
    ],
)
def test_parse_host(header: str, ns: str | None, name: str, namespace: str | None) -> None:
    h = parse_host(header, ns)
    assert (h.name, h.namespace) == (name, namespace)


@pytest.mark.parametrize(
    "host,vs_ns,key",
    [
        ("podinfo", "test", "podinfo.test.svc.cluster.local"),
        ("podinfo.test", "other", "podinfo.test.svc.cluster.local"),
        ("podinfo.test.svc.cluster.local", "test", "podinfo.test.svc.cluster.local"),
        ("app.example.com", "test", "app.example.com"),
    ],
)
def test_vs_host_key(host: str, vs_ns: str, key: str) -> None:
    assert vs_host_key(host, vs_ns) == key


def test_request_keys_meet_vs_keys() -> None:
    assert request_keys("podinfo:9898", "test") == ["podinfo", "podinfo.test.svc.cluster.local"]
    assert request_keys("podinfo", None) == ["podinfo"]  # a bare name without namespace is no Service
    assert request_keys("app.example.com", "test") == ["app.example.com"]


@pytest.mark.parametrize(
    "weights,draw,expected",
    [
        ([80, 20], 0.0, "a"),
        ([80, 20], 0.7999, "a"),
        ([80, 20], 0.8, "b"),
        ([80, 20], 0.9999, "b"),
        ([0, 100], 0.0, "b"),
        ([100, 0], 0.9999, "a"),
        ([0, 0], 0.5, None),
        ([None, None], 0.49, "a"),
        ([None, None], 0.5, "b"),  # no weights: equal shares
        ([50, None], 0.6, "a"),
        ([50, None], 0.4, "a"),  # a missing weight among given ones is 0
    ],
)
def test_pick_destination(weights: list[int | None], draw: float, expected: str | None) -> None:
    dests: list[dict[str, Any]] = []
    for host, w in zip("ab", weights, strict=True):
        d: dict[str, Any] = {"destination": {"host": host}}
        if w is not None:
            d["weight"] = w
        dests.append(d)
    assert pick_destination({"route": dests}, draw) == expected


def test_pick_destination_single_and_empty() -> None:
    assert pick_destination({"route": [{"destination": {"host": "a"}, "weight": 0}]}, 0.5) == "a"
    assert pick_destination({"route": []}, 0.5) is None


def test_weighted_split_statistics() -> None:
    route = {
        "route": [{"destination": {"host": "p"}, "weight": 80}, {"destination": {"host": "c"}, "weight": 20}]
    }
    picks = [pick_destination(route, i / 1000) for i in range(1000)]
    assert picks.count("c") == 200


COOKIE = {"cookie": {"regex": "^(.*?;)?(type=insider)(;.*)?$"}}


@pytest.mark.parametrize(
    "match,request_,expected",
    [
        (None, req(), True),
        ([], req(), True),
        ([{"headers": COOKIE}], req(headers={"cookie": "a=1;type=insider"}), True),
        ([{"headers": COOKIE}], req(headers={"cookie": "type=insider;b=2"}), True),
        ([{"headers": COOKIE}], req(headers={"cookie": "type=other"}), False),
        ([{"headers": COOKIE}], req(), False),
        ([{"headers": {"x-canary": {"exact": "insider"}}}], req(headers={"x-canary": "insider"}), True),
        ([{"headers": {"X-Canary": {"exact": "insider"}}}], req(headers={"x-canary": "insider"}), True),
        ([{"headers": {"x-canary": {"exact": "insider"}}}], req(headers={"x-canary": "insiders"}), False),
        (
            [{"headers": {"user-agent": {"prefix": "Mozilla"}}}],
            req(headers={"user-agent": "Mozilla/5"}),
            True,
        ),
        (
            [{"headers": {"user-agent": {"regex": ".*Firefox.*"}}}],
            req(headers={"user-agent": "x Chrome"}),
            False,
        ),
        ([{"headers": {"x-any": {}}}], req(headers={"x-any": ""}), True),  # presence
        ([{"uri": {"prefix": "/api"}}], req("/api/info?x=1"), True),
        ([{"uri": {"exact": "/api"}}], req("/api/info"), False),
        ([{"uri": {"prefix": "/API"}, "ignoreUriCase": True}], req("/api/x"), True),
        ([{"method": {"exact": "POST"}}], req(method="GET"), False),
        ([{"authority": {"exact": "podinfo"}}], req(), True),
        ([{"queryParams": {"v": {"exact": "2"}}}], req("/?v=2"), True),
        ([{"queryParams": {"v": {"exact": "2"}}}], req("/?v=1"), False),
        ([{"withoutHeaders": {"x-canary": {}}}], req(headers={"x-canary": "1"}), False),
        ([{"withoutHeaders": {"x-canary": {}}}], req(), True),
        # blocks are OR, conditions within a block AND
        (
            [{"uri": {"prefix": "/a"}, "method": {"exact": "POST"}}, {"uri": {"prefix": "/b"}}],
            req("/a"),
            False,
        ),
        (
            [{"uri": {"prefix": "/a"}, "method": {"exact": "POST"}}, {"uri": {"prefix": "/b"}}],
            req("/b"),
            True,
        ),
        (
            [{"headers": {"x": {"regex": "("}}}],
            req(headers={"x": "("}),
            False,
        ),  # a broken regex never matches
    ],
)
def test_request_matches(match: Any, request_: RequestView, expected: bool) -> None:
    assert request_matches(match, request_) is expected


def test_choose_route_first_match_wins() -> None:
    vs = {
        "spec": {
            "http": [
                {"match": [{"headers": COOKIE}], "route": [{"destination": {"host": "canary"}}]},
                {"route": [{"destination": {"host": "primary"}}]},
            ]
        }
    }
    assert choose_route(vs, req(headers={"cookie": "type=insider"})) == vs["spec"]["http"][0]
    assert choose_route(vs, req()) == vs["spec"]["http"][1]
    assert choose_route({"spec": {"http": [{"match": [{"uri": {"exact": "/x"}}]}]}}, req("/y")) is None


@pytest.mark.parametrize(
    "route,draw,expected",
    [
        ({"mirror": {"host": "c"}}, 0.99, "c"),
        ({"mirror": {"host": "c"}, "mirrorPercentage": {"value": 25.0}}, 0.2, "c"),
        ({"mirror": {"host": "c"}, "mirrorPercentage": {"value": 25.0}}, 0.3, None),
        ({"mirror": {"host": "c"}, "mirrorPercentage": {"value": 0}}, 0.0, None),
        ({"mirror": {"host": "c"}, "mirrorPercent": 50}, 0.4, "c"),
        ({}, 0.0, None),
    ],
)
def test_mirror_of(route: dict[str, Any], draw: float, expected: str | None) -> None:
    assert mirror_of(route, draw) == expected


def test_workloads_for_service_and_pick_by_available_replicas() -> None:
    deps = [
        deployment("podinfo", {"app": "podinfo"}),
        deployment("podinfo-primary", {"app": "podinfo-primary"}),
        deployment("other", {"app": "podinfo", "extra": "x"}, available=3),
    ]
    assert [
        d["metadata"]["name"] for d in workloads_for_service(service("podinfo", {"app": "podinfo"}), deps)
    ] == ["other", "podinfo"]
    assert workloads_for_service(service("headless", None), deps) == []
    both = workloads_for_service(service("podinfo", {"app": "podinfo"}), deps)
    assert pick_workload(both, 0.74)["metadata"]["name"] == "other"  # type: ignore[index]
    assert pick_workload(both, 0.75)["metadata"]["name"] == "podinfo"  # type: ignore[index]
    assert pick_workload([deployment("z", {}, available=0), deployment("y", {}, available=None)], 0.1) is None


@pytest.mark.parametrize(
    "image,tag",
    [
        ("ghcr.io/stefanprodan/podinfo:6.0.1", "6.0.1"),
        ("localhost:5000/podinfo", "latest"),
        ("localhost:5000/podinfo:1.2", "1.2"),
        ("podinfo@sha256:abc", "latest"),
        ("podinfo:7@sha256:abc", "7"),
    ],
)
def test_image_tag(image: str, tag: str) -> None:
    assert image_tag(image) == tag


def test_workload_behaviour_from_template() -> None:
    b = workload_behaviour(
        deployment(
            "x",
            {"app": "podinfo"},
            image="reg/podinfo:6.0.2",
            env={"BED_ERROR_PERCENT": "30", "BED_LATENCY_MS": "bad"},
        )
    )
    assert (b.version, b.error_percent, b.latency_ms, b.app, b.version_label) == (
        "6.0.2",
        30.0,
        0.0,
        "podinfo",
        "6.0.2",
    )
    b = workload_behaviour(deployment("x", {"version": "v2"}, env={"BED_LATENCY_MS": "250"}))
    assert (b.app, b.version_label, b.latency_ms) == ("x", "v2", 250.0)


def test_index_resolves_hosts_and_apex() -> None:
    svcs = {
        ("test", n): service(n, {"app": a})
        for n, a in (
            ("podinfo", "podinfo-primary"),
            ("podinfo-primary", "podinfo-primary"),
            ("podinfo-canary", "podinfo"),
        )
    }
    deps = {
        ("test", "podinfo"): deployment("podinfo", {"app": "podinfo"}),
        ("test", "podinfo-primary"): deployment("podinfo-primary", {"app": "podinfo-primary"}),
    }
    vs = {
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {"hosts": ["podinfo", "app.example.com"], "http": []},
    }
    index = view.build_index(svcs, deps, {("test", "podinfo"): vs})
    assert index.apex == [("test", "podinfo")]
    assert [d["metadata"]["name"] for d in index.workloads[("test", "podinfo-canary")]] == ["podinfo"]
    for host, ns in (
        ("podinfo", "test"),
        ("podinfo.test:9898", None),
        ("podinfo.test.svc.cluster.local", None),
        ("app.example.com", None),
        ("APP.example.com:443", "x"),
    ):
        assert view.virtual_service_for(index, host, ns) is vs, host
    for host, ns in (("podinfo", None), ("podinfo", "other"), ("podinfo-canary", "test")):
        assert view.virtual_service_for(index, host, ns) is None, host


def test_fast_exposition_equals_prometheus_client_and_prunes() -> None:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from e2e.mesh.metrics import IstioMetrics, RequestLabels

    def labels(workload: str, code: str, ns: str = "test") -> RequestLabels:
        svc = f"{workload}.{ns}.svc.cluster.local"
        return RequestLabels(
            "destination", "bed-client", ns, workload, ns, svc, workload, "podinfo", 'v"1\\', code
        )

    m = IstioMetrics()
    for ms, workload, code in (
        (0.5, "podinfo", "200"),
        (0.51, "podinfo", "200"),
        (260, "podinfo", "500"),
        (7_200_000, "podinfo-primary", "200"),
        (3, "podinfo", "200"),
    ):
        m.record(labels(workload, code), ms)

    def samples(text: bytes) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
        return {
            (s.name, tuple(sorted(s.labels.items())), s.value)
            for f in text_string_to_metric_families(text.decode())
            for s in f.samples
        }

    fast = samples(m.render())
    assert fast == samples(generate_latest(m.registry))
    ok = dict(labels("podinfo", "200").__dict__)
    assert ("istio_requests_total", tuple(sorted(ok.items())), 3.0) in fast
    for le, n in (("0.5", 1.0), ("1.0", 2.0), ("5.0", 3.0), ("+Inf", 3.0)):
        key = tuple(sorted({**ok, "le": le}.items()))
        assert ("istio_request_duration_milliseconds_bucket", key, n) in fast
    assert m.prune(lambda ns, workload: workload != "podinfo") == 2
    assert {s[1] for s in samples(m.render()) if s[0] == "istio_requests_total"} == {
        tuple(sorted(labels("podinfo-primary", "200").__dict__.items()))
    }


@pytest.mark.parametrize(
    "route,path,expected",
    [
        ({"match": [{"uri": {"prefix": "/podinfo"}}], "rewrite": {"uri": "/"}}, "/podinfo", "/"),
        ({"match": [{"uri": {"prefix": "/podinfo"}}], "rewrite": {"uri": "/"}}, "/podinfo/x?a=1", "//x?a=1"),
        ({"match": [{"uri": {"prefix": "/podinfo/"}}], "rewrite": {"uri": "/"}}, "/podinfo/api/info",
         "/api/info"),
        ({"match": [{"uri": {"exact": "/a"}}], "rewrite": {"uri": "/b"}}, "/a?q", "/b?q"),
        ({"rewrite": {"uri": "/v2"}}, "/anything", "/v2"),
        ({"match": [{"uri": {"prefix": "/"}}]}, "/same", "/same"),
    ],
)
def test_rewritten_path(route: dict[str, Any], path: str, expected: str) -> None:
    assert rewritten_path(route, req(path)) == expected


def test_response_headers_route_then_destination() -> None:
    route = {"headers": {"response": {"add": {"x-route": "1", "x-gone": "1"}, "remove": ["x-gone"]}}}
    entry = {"destination": {"host": "c"}, "headers": {"response": {"add": {"Set-Cookie": "k=v; Max-Age=5"}}}}
    assert response_headers(route, entry) == {"x-route": "1", "Set-Cookie": "k=v; Max-Age=5"}
    assert response_headers({}, None) == {}
    assert response_headers({"headers": {"response": {"set": {"a": "b"}}}}, {}) == {"a": "b"}


def test_delegate_of() -> None:
    assert delegate_of({"delegate": {"name": "podinfo", "namespace": "test"}}, "root") == ("test", "podinfo")
    assert delegate_of({"delegate": {"name": "podinfo"}}, "root") == ("root", "podinfo")
    assert delegate_of({"route": []}, "root") is None


def _world(ns: str = "test") -> tuple[dict[Any, Any], dict[Any, Any]]:
    svcs = {(ns, n): service(n, {"app": a}, ns) for n, a in
            (("podinfo", "podinfo-primary"), ("podinfo-primary", "podinfo-primary"),
             ("podinfo-canary", "podinfo"))}
    deps = {(ns, "podinfo"): deployment("podinfo", {"app": "podinfo"}, image="r/podinfo:6.0.1", ns=ns),
            (ns, "podinfo-primary"): deployment("podinfo-primary", {"app": "podinfo-primary"}, ns=ns)}
    return svcs, deps


def _version(body: bytes) -> str:
    import orjson

    return str(orjson.loads(body)["version"])


async def test_dispatch_cookie_route_set_cookie_and_delegation() -> None:
    from e2e.mesh.app import Mesh

    svcs, deps = _world()
    weighted = [{"destination": {"host": "podinfo-primary"}, "weight": 100},
                {"destination": {"host": "podinfo-canary"}, "weight": 0,
                 "headers": {"response": {"add": {"Set-Cookie": "c=abc; Max-Age=60"}}}}]
    delegate = {"metadata": {"name": "podinfo", "namespace": "test"},
                "spec": {"hosts": [], "http": [
                    {"name": "sticky-route", "match": [{"headers": {"Cookie": {"regex": ".*c.*abc.*"}}}],
                     "route": [{"destination": {"host": "podinfo-primary"}, "weight": 0},
                               {"destination": {"host": "podinfo-canary"}, "weight": 100}]},
                    {"route": weighted}]}}
    root = {"metadata": {"name": "root-vs", "namespace": "gw"},
            "spec": {"hosts": ["app.example.com"], "http": [
                {"match": [{"uri": {"prefix": "/podinfo"}}], "rewrite": {"uri": "/"},
                 "delegate": {"name": "podinfo", "namespace": "test"}}]}}
    vss = {("test", "podinfo"): delegate, ("gw", "root-vs"): root}
    mesh = Mesh(lambda: (svcs, deps, vss), background_rps=0)

    async def get(headers: dict[str, str]) -> Any:
        r = RequestView("GET", "/podinfo", "app.example.com", headers)
        return await mesh.dispatch("app.example.com", None, r)

    plain = await get({})
    assert (plain.status, _version(plain.body)) == (200, "6.0.0")  # rewritten to / and sent to the primary
    assert "Set-Cookie" not in plain.headers
    for _ in range(5):
        sticky = await get({"cookie": "other=1; c=abc"})
        assert (sticky.status, _version(sticky.body)) == (200, "6.0.1")
    weighted[0]["weight"], weighted[1]["weight"] = 0, 100
    mesh.changed()
    canary = await get({})
    assert _version(canary.body) == "6.0.1"
    assert canary.headers["Set-Cookie"] == "c=abc; Max-Age=60"
    missing = Mesh(lambda: (svcs, deps, {("gw", "root-vs"): root}), background_rps=0)
    bare = RequestView("GET", "/podinfo", "app.example.com", {})
    gone = await missing.dispatch("app.example.com", None, bare)
    assert gone.status == 502 and b"delegate VirtualService podinfo.test not found" in gone.body
