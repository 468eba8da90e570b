"""Features beyond the tutorial's run, in the box: a ConfigMap and a Secret change start a run (their
``-primary`` copies follow), a taken-over Service and VirtualService given back on deletion, webhook
gates, and A/B testing by header."""

from __future__ import annotations

import base64
import copy
from typing import Any

from canaryd.kube import resources as r

from .harness import Box, eventually
from .objects import IMAGE, podinfo
from .scenario import KEY, NS, final_phase, initialized, succeeded


def with_configs(deployment: dict[str, Any]) -> dict[str, Any]:
    d = copy.deepcopy(deployment)
    pod = d["spec"]["template"]["spec"]
    pod["volumes"] = [{"name": "config", "configMap": {"name": "podinfo-config"}}]
    pod["containers"][0]["envFrom"] = [{"secretRef": {"name": "podinfo-secret"}}]
    return d


async def test_a_config_change_starts_a_run_and_the_primary_copies_follow(box: Box) -> None:
    box.api.put(r.CONFIGMAP, {"metadata": {"name": "podinfo-config", "namespace": NS},
                              "data": {"color": "blue"}})
    secret = base64.b64encode(b"s3cret").decode()
    box.api.put(r.SECRET, {"metadata": {"name": "podinfo-secret", "namespace": NS},
                           "data": {"token": secret}})
    await box.run()
    await initialized(box, deployment=with_configs(podinfo(NS)))
    copied = box.api.get(r.CONFIGMAP, NS, "podinfo-config-primary")
    assert copied is not None and copied["data"] == {"color": "blue"}
    assert (box.api.get(r.SECRET, NS, "podinfo-secret-primary") or {}).get("data") == {"token": secret}
    primary = box.api.get(r.DEPLOYMENT, NS, "podinfo-primary")
    assert primary is not None
    pod = primary["spec"]["template"]["spec"]
    assert pod["volumes"][0]["configMap"]["name"] == "podinfo-config-primary"
    assert pod["containers"][0]["envFrom"][0]["secretRef"]["name"] == "podinfo-secret-primary"

    box.api.edit(r.CONFIGMAP, NS, "podinfo-config", lambda c: c["data"].update(color="green"))
    await succeeded(box, image=f"{IMAGE}:6.0.0")  # a run without a new image
    assert f"New revision detected! Scaling up {KEY}" in box.messages(NS)
    copied = box.api.get(r.CONFIGMAP, NS, "podinfo-config-primary")
    assert copied is not None and copied["data"] == {"color": "green"}


async def test_a_taken_over_service_and_virtual_service_are_given_back(box: Box) -> None:
    svc: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {"selector": {"app": "podinfo"},
                 "ports": [{"name": "http", "port": 9898, "targetPort": 9898}]}}
    vs: dict[str, Any] = {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
          "metadata": {"name": "podinfo", "namespace": NS},
          "spec": {"hosts": ["podinfo"], "http": [{"route": [{"destination": {"host": "podinfo"}}]}]}}
    box.api.put(r.SERVICE, svc)
    box.api.put(r.VIRTUAL_SERVICE, vs)
    await box.run()
    await initialized(box, revert_on_deletion=True)

    def taken_over() -> dict[str, Any] | None:  # the apex Service moves once the primary is ready
        svc = box.api.get(r.SERVICE, NS, "podinfo") or {}
        return svc if svc["spec"]["selector"] == {"app": "podinfo-primary"} else None

    taken = await eventually(taken_over, 5, "the Service taken over")
    assert "flagger.kubernetes.io/original-configuration" in taken["metadata"]["annotations"]
    await eventually(lambda: (box.api.get(r.VIRTUAL_SERVICE, NS, "podinfo") or {})["spec"]["http"]
                     != vs["spec"]["http"], 5, "the VirtualService taken over")

    box.api.remove(r.CANARY, NS, "podinfo")
    await eventually(lambda: box.api.get(r.CANARY, NS, "podinfo") is None, 10, "the Canary gone")
    given_back = box.api.get(r.SERVICE, NS, "podinfo")
    assert given_back is not None and given_back["spec"]["selector"] == {"app": "podinfo"}
    restored = box.api.get(r.VIRTUAL_SERVICE, NS, "podinfo")
    assert restored is not None and restored["spec"]["http"] == vs["spec"]["http"]


def gated(hooks_url: str) -> list[dict[str, Any]]:
    return [{"name": "gate", "type": "confirm-rollout", "url": f"{hooks_url}/gate"},
            {"name": "promotion", "type": "confirm-promotion", "url": f"{hooks_url}/promote"},
            {"name": "load-test", "url": f"{hooks_url}/load", "timeout": "5s"},
            {"name": "done", "type": "post-rollout", "url": f"{hooks_url}/post"}]


async def test_gates_hold_a_run_until_they_open(box: Box) -> None:
    box.hooks.answers["/gate"] = 403
    await box.run()
    await initialized(box)
    canary = box.canary(NS)
    canary["spec"]["canaryAnalysis"]["webhooks"] = gated(box.hooks.url)
    box.api.put(r.CANARY, canary)
    box.set_image(NS, "6.0.1")
    await eventually(lambda: box.phase(NS) == "Waiting", 10, "waiting at the rollout gate")
    assert box.weights(NS) == [0]
    box.hooks.answers["/promote"] = 403
    box.hooks.answers["/gate"] = 200
    await eventually(lambda: box.phase(NS) == "WaitingPromotion", 20, "waiting at the promotion gate")
    box.hooks.answers["/promote"] = 200
    await succeeded(box)
    await eventually(lambda: box.hooks.bodies("/post"), 5, "the post-rollout hook")
    assert box.hooks.bodies("/post")[0]["phase"] == "Succeeded"


async def test_ab_testing_routes_by_header_for_its_iterations(box: Box) -> None:
    await box.run()
    await initialized(box)
    canary = box.canary(NS)
    analysis = canary["spec"]["canaryAnalysis"]
    analysis.pop("maxWeight")
    analysis.pop("stepWeight")
    analysis["iterations"] = 3
    analysis["match"] = [{"headers": {"x-canary": {"exact": "insider"}}}]
    box.api.put(r.CANARY, canary)
    box.set_image(NS, "6.0.1")
    await eventually(lambda: box.phase(NS) == "Progressing", 10, "Progressing")
    await eventually(lambda: _header_route(box), 10, "a route for the header")
    assert await final_phase(box) == "Succeeded", box.status(NS)
    assert box.primary_image(NS) == f"{IMAGE}:6.0.1"
    routes = (box.api.get(r.VIRTUAL_SERVICE, NS, "podinfo") or {})["spec"]["http"]
    to_canary = [d.get("weight", 0) for route in routes for d in route["route"]
                 if d["destination"]["host"] == "podinfo-canary"]
    assert to_canary and set(to_canary) == {0}, routes  # every route, the header's too, back to the primary


def _header_route(box: Box) -> bool:
    vs = box.api.get(r.VIRTUAL_SERVICE, NS, "podinfo") or {}
    return any(m.get("headers") == {"x-canary": {"exact": "insider"}}
               for route in vs.get("spec", {}).get("http", []) for m in route.get("match") or [])
