"""Flagger's Istio suite, continued (flagger-reference.md §11): test-delegation, test-session-affinity, and
the Canaries this release rejects (docs/compatibility.md, scope), each with its status condition and Event.

Common substitutions are listed in e2e/flagger_suite.py. Here, in addition: the ingress gateway is the mesh
simulator itself (it ignores ``gateways``, so the Gateway object is not created), and a VirtualService host
``www-<ns>.example.com`` stands for Flagger's ``*`` (a wildcard would claim every host of the shared bed)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

pytest.register_assert_rewrite("e2e.flagger_suite")  # before its import: it is also a fixture plugin

from canaryd.kube.client import KubeClient  # noqa: E402
from canaryd.kube.resources import CANARY, EVENT, VIRTUAL_SERVICE  # noqa: E402
from e2e.bed.waiting import wait_for  # noqa: E402
from e2e.canaries import IMAGE, canary, create, podinfo, set_image, status, wait_phase  # noqa: E402
from e2e.flagger_suite import (  # noqa: E402
    Clock,
    LoadTesterFactory,
    get,
    hook,
    initialized,
    primary_image,
    switch,
)
from e2e.operator import Operator, mesh_proxy  # noqa: E402

pytest_plugins = ["e2e.flagger_suite"]  # fixtures: admin, loadtester_factory, clock

RUN = 120.0
COMPATIBILITY = Path(__file__).resolve().parents[1] / "docs" / "compatibility.md"


def host(namespace: str) -> str:
    return f"www-{namespace}.example.com"


def versions(replies: list[tuple[int, dict[str, str], Any]]) -> list[str]:
    return [str(body["version"]) if code == 200 else f"HTTP {code}" for code, _, body in replies]


async def test_delegation(bed: Any, namespace: str, operator_factory: Callable[..., Operator],
                          admin: KubeClient, loadtester_factory: LoadTesterFactory, clock: Clock) -> None:
    """test-delegation.sh: the Canary's VirtualService is a delegate (no hosts, no gateways) and a root
    VirtualService hands ``/podinfo`` (rewritten to ``/``) to it. Substitutions: root-vs lives in the
    test namespace with host www-<ns>.example.com (Flagger: istio-system, ``*``); interval 2s."""
    await loadtester_factory("--allow-external-targets")  # hey targets the gateway's host, not a Service
    spec = canary(namespace, interval="2s", threshold=10, stepWeight=10, maxWeight=30, webhooks=[
        hook(namespace, "load-test", "rollout", type="cmd",
             cmd=f"hey -z 2m -q 10 -c 2 http://{host(namespace)}/podinfo")])
    spec["spec"]["service"] = {"port": 80, "targetPort": 9898, "portDiscovery": True, "delegation": True}
    root = {
        "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": "root-vs", "namespace": namespace},
        "spec": {"gateways": ["istio-system/istio-ingressgateway"], "hosts": [host(namespace)],
                 "http": [{"match": [{"uri": {"prefix": "/podinfo"}}], "rewrite": {"uri": "/"},
                           "delegate": {"name": "podinfo", "namespace": namespace}}]},
    }
    operator_factory(namespace)
    await admin.create(VIRTUAL_SERVICE, namespace, root)
    await create(admin, namespace, podinfo(namespace), spec)
    await initialized(admin, namespace)
    clock.mark("Initialized")
    delegate = (await admin.get(VIRTUAL_SERVICE, namespace, "podinfo"))["spec"]
    assert delegate["hosts"] == [] and "gateways" not in delegate
    assert [d["destination"] for d in delegate["http"][0]["route"]] == [
        {"host": "podinfo-primary", "port": {"number": 80}},
        {"host": "podinfo-canary", "port": {"number": 80}}]

    proxy = mesh_proxy(str(bed.mesh_url), namespace)
    assert proxy is not None
    url = f"http://{host(namespace)}/podinfo"
    async with aiohttp.ClientSession() as s:
        assert versions([await get(s, proxy, url)]) == ["6.0.0"]
        await set_image(admin, namespace, "6.0.1")

        async def split() -> bool:
            st = await status(admin, namespace)
            return st.get("phase") == "Progressing" and int(st.get("canaryWeight") or 0) >= 20

        await wait_for(split, RUN, "the run at weight 20 or more")
        clock.mark("weight >= 20")
        seen = versions([await get(s, proxy, url) for _ in range(60)])
        clock.mark("60 requests through the root")
        # both versions answer through the root while the weights split the traffic
        assert set(seen) == {"6.0.0", "6.0.1"}, seen
        await wait_phase(admin, namespace, "Succeeded", seconds=RUN)
        clock.mark("Succeeded")
        assert await primary_image(admin, namespace) == f"{IMAGE}:6.0.1"
        assert set(versions([await get(s, proxy, url) for _ in range(10)])) == {"6.0.1"}
    print(f"\nthrough root-vs at weight >= 20: {seen.count('6.0.1')} of {len(seen)} answered by the canary")


def cookie_of(headers: dict[str, str], name: str) -> str | None:
    """``name=value`` of a Set-Cookie header for cookie ``name``."""
    got = re.match(rf"({re.escape(name)}=[A-Za-z]+);", headers.get("Set-Cookie", ""))
    return got.group(1) if got else None


async def test_session_affinity(
        bed: Any, namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient,
        loadtester_factory: LoadTesterFactory, clock: Clock) -> None:
    """test-session-affinity.sh with verify_session_affinity.go's checks. Substitutions: a closed
    confirm-promotion gate (load tester /gate/check) holds the run at its maximum weight while the cookies
    are checked, instead of racing a 15 s step at weight 10; requests go through the mesh proxy instead of
    a port-forward to the ingress gateway."""
    tester = await loadtester_factory()
    spec = canary(namespace, interval="2s", threshold=10, stepWeight=10, maxWeight=30,
                  sessionAffinity={"cookieName": "canary-flagger-cookie",
                                   "primaryCookieName": "primary-flagger-cookie"},
                  webhooks=[hook(namespace, "hold", "confirm-promotion", "/gate/check")])
    spec["spec"]["service"] = {"port": 80, "targetPort": 9898,
                               "gateways": ["istio-system/istio-ingressgateway"], "hosts": [host(namespace)]}
    operator_factory(namespace)
    await create(admin, namespace, podinfo(namespace), spec)
    await initialized(admin, namespace)
    clock.mark("Initialized")
    await set_image(admin, namespace, "6.0.1")
    st = await wait_phase(admin, namespace, "WaitingPromotion", seconds=RUN)
    clock.mark("WaitingPromotion at 30")
    assert st["canaryWeight"] == 30

    proxy = mesh_proxy(str(bed.mesh_url), namespace)
    assert proxy is not None
    url = f"http://{host(namespace)}/"
    # no cookie jar: every request carries exactly the cookies the test gives it, like curl
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        cookies: dict[str, str] = {}

        async def both_cookies() -> bool:
            code, headers, body = await get(s, proxy, url)
            version = body.get("version") if code == 200 else None
            for name, expected in (("canary-flagger-cookie", "6.0.1"), ("primary-flagger-cookie", "6.0.0")):
                cookie = cookie_of(headers, name)
                if cookie:
                    assert version == expected, (name, version, headers)  # each version sets its own
                    cookies[name] = cookie
            return len(cookies) == 2

        await wait_for(both_cookies, 30, "a response from each version carrying its cookie", interval=0.01)
        clock.mark("both cookies")
        st = await status(admin, namespace)
        assert st["sessionAffinityCookie"] == cookies["canary-flagger-cookie"]
        assert st["primarySessionAffinityCookie"] == cookies["primary-flagger-cookie"]
        for name, expected in (("canary-flagger-cookie", "6.0.1"), ("primary-flagger-cookie", "6.0.0")):
            # "then 5 requests with that cookie must never reach the other version" (here 20)
            jar = {"Cookie": f"x=1; {cookies[name]}"}
            sticky = versions([await get(s, proxy, url, jar) for _ in range(20)])
            assert set(sticky) == {expected}, (name, sticky)
        code, headers, _ = await get(s, proxy, url, {"Cookie": cookies["canary-flagger-cookie"]})
        assert code == 200 and "Set-Cookie" not in headers  # the sticky route sets no cookie again
        await switch(tester, "/gate/open", namespace)
        st = await wait_phase(admin, namespace, "Succeeded", seconds=RUN)
        clock.mark("Succeeded")
        previous = st["previousSessionAffinityCookie"]
        assert previous == cookies["canary-flagger-cookie"] and "sessionAffinityCookie" not in st
        # Flagger's last check: the previous cookie is expired (curl -H "Cookie: <previous>")
        code, headers, body = await get(s, proxy, url, {"Cookie": previous})
        assert (code, body["version"]) == (200, "6.0.1")
        assert headers.get("Set-Cookie") == f"{previous}; Max-Age=-1"


REJECTED: list[tuple[str, dict[str, Any], str, dict[str, str]]] = [
    ("daemonset", {"targetRef": {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "podinfo-ds"}},
     "DaemonSet targets are not supported yet; supported kinds: Deployment", {}),
    ("linkerd", {"provider": "linkerd"},
     "spec.provider linkerd is not supported; supported: istio (or leave it unset)",
     {"{provider}": "linkerd"}),
    ("keda", {"autoscalerRef": {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                                "name": "podinfo"}},
     "spec.autoscalerRef kind ScaledObject (KEDA) is not supported yet; "
     "supported: HorizontalPodAutoscaler", {}),
    *[(f"task-{t}", {"webhook_type": t},
       f"webhook deploy: load tester task type {t} is not supported yet; supported: cmd, bash",
       {"{name}": "deploy", "{type}": t}) for t in ("helm", "kubectl", "concord", "ngrinder")],
]


def rejected_canary(namespace: str, name: str, change: dict[str, Any]) -> dict[str, Any]:
    obj = canary(namespace)
    obj["metadata"]["name"] = name
    obj["spec"]["targetRef"]["name"] = f"target-{name}"  # a target of its own: no duplicate-target refusal
    task = change.pop("webhook_type", None)
    if task:
        obj["spec"]["analysis"]["webhooks"] = [
            {"name": "deploy", "url": f"http://flagger-loadtester.{namespace}/", "timeout": "30s",
             "metadata": {"type": task, "cmd": "upgrade -i podinfo podinfo/podinfo"}}]
    obj["spec"].update(change)
    return obj


def scope_rows() -> list[str]:
    """The ``rejected | `…``` texts of the scope table in docs/compatibility.md."""
    return re.findall(r"\| rejected \| `([^`]+)` \|", COMPATIBILITY.read_text())


def filled(row: str, placeholders: dict[str, str]) -> str:
    for key, value in placeholders.items():
        row = row.replace(key, value)
    return row


async def test_rejections_have_condition_event_and_documented_message(
        namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient, clock: Clock) -> None:
    """Out of this release's scope (DaemonSet target, provider other than istio, KEDA ScaledObject, load
    tester task types helm/kubectl/concord/ngrinder): each Canary gets Valid=False with the message of
    docs/compatibility.md's scope table and one Warning Event with that message; nothing is generated."""
    rows = scope_rows()
    operator_factory(namespace)
    for name, change, _, _ in REJECTED:
        await admin.create(CANARY, namespace, rejected_canary(namespace, name, dict(change)))
    for name, _, message, placeholders in REJECTED:
        # the documented text, its placeholders filled in, is the exact message
        assert any(filled(row, placeholders) == message for row in rows), (message, rows)

        async def reported(name: str = name) -> dict[str, Any] | None:
            st = await status(admin, namespace, name)
            valid = [c for c in st.get("conditions") or [] if c.get("type") == "Valid"]
            return st if valid else None

        st = await wait_for(reported, 60, f"the Valid condition of {name}")
        valid = next(c for c in st["conditions"] if c["type"] == "Valid")
        assert (valid["status"], valid["reason"], valid["message"]) == ("False", "InvalidSpec", message)
        assert st["message"] == message
    clock.mark("all reported")

    async def events() -> dict[str, list[tuple[str, str, int]]] | None:
        items, _ = await admin.list(EVENT, namespace)
        out: dict[str, list[tuple[str, str, int]]] = {}
        for e in items:
            obj = e.get("involvedObject") or {}
            if obj.get("kind") == "Canary":
                out.setdefault(obj["name"], []).append((e["type"], e["message"], int(e.get("count") or 1)))
        return out if len(out) == len(REJECTED) else None

    got = await wait_for(events, 30, "one Warning Event per rejected Canary")
    for name, _, message, _ in REJECTED:
        assert got[name] == [("Warning", message, 1)], (name, got[name])
    # nothing generated for them
    vs, _ = await admin.list(VIRTUAL_SERVICE, namespace)
    assert vs == []
