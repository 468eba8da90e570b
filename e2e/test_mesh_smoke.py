"""The mesh simulator is real enough: weights split traffic, metrics reach Prometheus, the proxy stands in
for cluster DNS, and an unavailable destination answers 503."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import urllib.request
from collections import Counter
from typing import Any

import aiohttp

from e2e.bed.waiting import wait_for
from e2e.mesh.control import MeshControl
from e2e.mesh.routing import choose_route, parse_host, pick_destination, request_matches, workload_behaviour


def _deployment(name: str, app: str, image: str = "ghcr.io/stefanprodan/podinfo:6.0.0", replicas: int = 1,
                env: list[dict[str, str]] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image}
    if env:
        container["env"] = env
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                     "template": {"metadata": {"labels": {"app": app}}, "spec": {"containers": [container]}}}}


def _service(name: str, app: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": app}, "ports": [{"port": 9898, "name": "http"}]}}


def _vs(name: str, primary: int, canary: int) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService", "metadata": {"name": name},
            "spec": {"hosts": [name], "http": [{"route": [
                {"destination": {"host": f"{name}-primary"}, "weight": primary},
                {"destination": {"host": f"{name}-canary"}, "weight": canary}]}]}}


def _available(bed: Any, ns: str, name: str, count: int) -> bool:
    out = bed.kubectl("-n", ns, "get", "deploy", name, "-o", "jsonpath={.status.availableReplicas}", check=False)
    return out.stdout.strip() == str(count)


def _prom(bed: Any, query: str) -> list[dict[str, Any]]:
    url = f"{bed.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as resp:
        result: list[dict[str, Any]] = json.load(resp)["data"]["result"]
        return result


async def _setup_app(bed: Any, ns: str, name: str, primary: int, canary: int) -> None:
    bed.apply(_deployment(f"{name}-primary", f"{name}-primary"), ns)
    bed.apply(_deployment(name, name, image="ghcr.io/stefanprodan/podinfo:6.0.1"), ns)
    for svc, app in ((name, f"{name}-primary"), (f"{name}-primary", f"{name}-primary"), (f"{name}-canary", name)):
        bed.apply(_service(svc, app), ns)
    bed.apply(_vs(name, primary, canary), ns)
    await wait_for(lambda: _available(bed, ns, name, 1) and _available(bed, ns, f"{name}-primary", 1), 60,
                   "both workloads available")


async def test_weights_split_traffic_80_20(bed: Any, namespace: str) -> None:
    await _setup_app(bed, namespace, "podinfo", 100, 0)
    # the VirtualService round-trips through the API server
    got = bed.kubectl_json("-n", namespace, "get", "vs", "podinfo", "-o", "json")
    assert [d["weight"] for d in got["spec"]["http"][0]["route"]] == [100, 0]
    bed.kubectl("-n", namespace, "patch", "vs", "podinfo", "--type=json", "-p", json.dumps([
        {"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 80},
        {"op": "replace", "path": "/spec/http/0/route/1/weight", "value": 20}]))
    control = MeshControl(str(bed.mesh_url))

    async def seen() -> bool:
        routes = await control.routes()
        return routes.get(f"podinfo.{namespace}") == [["podinfo-primary", 80], ["podinfo-canary", 20]]

    await wait_for(seen, 30, "the simulator to see 80/20")
    versions: Counter[str] = Counter()
    async with aiohttp.ClientSession() as s:
        sem = asyncio.Semaphore(20)

        async def one() -> None:
            async with sem, s.get(f"{bed.mesh_url}/", headers={"Host": f"podinfo.{namespace}:9898"}) as r:
                assert r.status == 200
                versions[(await r.json())["version"]] += 1

        await asyncio.gather(*(one() for _ in range(1000)))
    share = versions["6.0.1"] / 10
    assert 15 <= share <= 25, versions


async def test_canary_errors_reach_prometheus(bed: Any, namespace: str) -> None:
    await _setup_app(bed, namespace, "podinfo", 100, 0)
    async with aiohttp.ClientSession() as s:
        for _ in range(5):
            async with s.get(f"{bed.mesh_url}/status/500", headers={"Host": f"podinfo-canary.{namespace}"}) as r:
                assert r.status == 500
    query = (f'istio_requests_total{{response_code="500", destination_workload="podinfo", '
             f'destination_workload_namespace="{namespace}", reporter="destination"}}')

    def in_prometheus() -> bool:
        result = _prom(bed, query)
        return bool(result) and float(result[0]["value"][1]) >= 5

    await wait_for(in_prometheus, 5, "the 500s in Prometheus")


async def test_proxy_reaches_the_app_and_counts(bed: Any, namespace: str) -> None:
    await _setup_app(bed, namespace, "podinfo", 100, 0)
    control = MeshControl(str(bed.mesh_url))
    proxy = await control.proxy(namespace)
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://podinfo.{namespace}:9898/", proxy=proxy) as r:
            assert r.status == 200
            assert (await r.json())["version"] == "6.0.0"
        async with s.get("http://podinfo-canary:9898/", proxy=proxy) as r:  # a bare name, in namespace
            assert (await r.json())["version"] == "6.0.1"
        async with s.get(f"http://nothing-here.{namespace}/", proxy=proxy) as r:
            assert r.status == 502
    async with aiohttp.ClientSession() as s, s.get(f"{bed.mesh_url}/metrics") as r:
        text = await r.text()
    assert f'destination_workload="podinfo",destination_workload_namespace="{namespace}"' in text
    assert 'source_workload="bed-client"' in text


async def test_unavailable_destination_answers_503(bed: Any, namespace: str) -> None:
    await _setup_app(bed, namespace, "podinfo", 100, 0)
    bed.kubectl("-n", namespace, "scale", "deploy", "podinfo", "--replicas=0")
    await wait_for(lambda: not _available(bed, namespace, "podinfo", 1), 30, "canary scaled to zero")

    async def answers_503() -> bool:
        async with aiohttp.ClientSession() as s, s.get(
            f"{bed.mesh_url}/", headers={"Host": f"podinfo-canary.{namespace}"}
        ) as r:
            return r.status == 503

    await wait_for(answers_503, 30, "503 from a destination with no replicas")


# ---- pure routing decisions ----

def test_parse_host_forms() -> None:
    def split(header: str, ns: str | None) -> tuple[str, str | None]:
        h = parse_host(header, ns)
        return h.name, h.namespace

    assert split("podinfo-canary:9898", "test") == ("podinfo-canary", "test")
    assert split("podinfo.test", None) == ("podinfo", "test")
    assert split("podinfo.test.svc.cluster.local:9898", None) == ("podinfo", "test")
    assert split("app.example.com", None) == ("app.example.com", None)


def test_pick_destination_by_weight() -> None:
    route = {"route": [{"destination": {"host": "a"}, "weight": 80}, {"destination": {"host": "b"}, "weight": 20}]}
    assert pick_destination(route, 0.0) == "a"
    assert pick_destination(route, 0.79) == "a"
    assert pick_destination(route, 0.8) == "b"
    assert pick_destination({"route": [{"destination": {"host": "a"}, "weight": 0}]}, 0.5) == "a"


def test_match_headers_and_cookies() -> None:
    match = [{"headers": {"cookie": {"regex": "^(.*?;)?(type=insider)(;.*)?$"}}}]
    assert request_matches(match, {"cookie": "type=insider"}, "/")
    assert not request_matches(match, {"cookie": "type=other"}, "/")
    vs = {"spec": {"http": [{"match": match, "route": [{"destination": {"host": "c"}}]},
                            {"route": [{"destination": {"host": "p"}}]}]}}
    assert choose_route(vs, {}, "/") == vs["spec"]["http"][1]


def test_workload_behaviour_from_env() -> None:
    d = _deployment("x", "x", image="reg/podinfo:6.0.2", env=[{"name": "BED_ERROR_PERCENT", "value": "30"}])
    assert workload_behaviour(d) == ("6.0.2", 30.0, 0.0)
