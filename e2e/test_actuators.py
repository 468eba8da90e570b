"""The writers against the real API server of the test bed: the tutorial's objects are created with the
right selectors and owners, a second reconcile sends nothing, routes move only weights, promotion
rolls the primary, and deleting the Canary lets the garbage collector remove what it owned."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from canaryd.actuators import generated, istio_objects, routing, workloads
from canaryd.actuators.generated import GenerationError
from canaryd.cache.informer import Informers
from canaryd.cache.store import Store
from canaryd.kube import resources as r
from canaryd.kube.client import KubeClient
from canaryd.kube.errors import NotFound
from canaryd.model.parse import parse_canary
from canaryd.model.spec import CanarySpec
from canaryd.settings import Settings
from e2e.conftest import wait_for as _bed_wait_for

pytestmark = pytest.mark.e2e

wait_for: Callable[..., Awaitable[Any]] = _bed_wait_for  # the bed's helper; predicates here are async too
CANARY_V1ALPHA3 = r.Resource("flagger.app", "v1alpha3", "canaries", "Canary")
LOG = logging.getLogger("canaryd.test.actuators")
WRITE_VERBS = ("create", "update", "patch", "delete")
READ_VERBS = ("get", "list")
KINDS = (r.DEPLOYMENT, r.HPA, r.SERVICE, r.CONFIGMAP, r.SECRET, r.VIRTUAL_SERVICE, r.DESTINATION_RULE,
         r.CANARY)


def requests(client: KubeClient, verbs: tuple[str, ...]) -> float:
    """Requests the client sent with one of ``verbs`` (its own Prometheus counter)."""
    total = 0.0
    for metric in client.registry.collect():
        for sample in metric.samples:
            if sample.name == "canaryd_api_requests_total" and sample.labels.get("verb") in verbs:
                total += sample.value
    return total


def podinfo(ns: str, image: str = "ghcr.io/stefanprodan/podinfo:6.0.0",
            match: dict[str, str] | None = None, config: bool = False) -> dict[str, Any]:
    labels = match or {"app": "podinfo"}
    pod: dict[str, Any] = {
        "containers": [{
            "name": "podinfod",
            "image": image,
            "ports": [{"name": "http", "containerPort": 9898, "protocol": "TCP"}],
        }],
    }
    if config:
        pod["volumes"] = [{"name": "config", "configMap": {"name": "podinfo-config"}}]
        pod["containers"][0]["envFrom"] = [{"secretRef": {"name": "podinfo-secret"}}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "podinfo", "namespace": ns, "labels": {"app": "podinfo"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


def podinfo_hpa(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "minReplicas": 2,
            "maxReplicas": 4,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}],
        },
    }


def tutorial_canary(ns: str) -> dict[str, Any]:
    """The seed tutorial's v1alpha3 Canary (hosts adapted)."""
    return {
        "apiVersion": "flagger.app/v1alpha3",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "progressDeadlineSeconds": 60,
            "autoscalerRef": {"apiVersion": "autoscaling/v2beta1", "kind": "HorizontalPodAutoscaler",
                              "name": "podinfo"},
            "service": {
                "port": 9898,
                "gateways": ["public-gateway.istio-system.svc.cluster.local"],
                "hosts": ["app.istio.example.com"],
            },
            "canaryAnalysis": {
                "interval": "2s", "threshold": 10, "maxWeight": 50, "stepWeight": 5,
                "metrics": [{"name": "istio_requests_total", "threshold": 99, "interval": "30s"}],
            },
        },
    }


@dataclass
class Rig:
    """A canaryd-side client and cache on one namespace, plus the admin client that plays the user."""

    ns: str
    client: KubeClient
    admin: KubeClient
    store: Store
    settings: Settings

    async def apply(self, res: r.Resource, body: dict[str, Any]) -> dict[str, Any]:
        return await self.admin.create(res, self.ns, body)

    async def canary(self, body: dict[str, Any]) -> CanarySpec:
        created = await self.apply(CANARY_V1ALPHA3, body)
        spec = parse_canary(created)
        assert isinstance(spec, CanarySpec), spec
        return spec

    async def cached(self, res: r.Resource, name: str) -> dict[str, Any]:
        obj = await wait_for(lambda: self.store.get(res.kind, self.ns, name), 10, f"{res.kind} {name} cached")
        assert isinstance(obj, dict)
        return obj

    async def in_sync(self) -> None:
        """Until the cache holds every generated object at the API server's current resourceVersion."""
        async def check() -> bool:
            for res in KINDS:
                items, _ = await self.admin.list(res, self.ns)
                want = {i["metadata"]["name"]: i["metadata"]["resourceVersion"] for i in items}
                have = {o["metadata"]["name"]: o["metadata"].get("resourceVersion")
                        for o in self.store.items(res.kind, self.ns)}
                if want != have:
                    return False
            return True
        await wait_for(check, 15, "the cache to catch up with the API server")

    async def initialize(self, spec: CanarySpec, weights: tuple[int, int] = (100, 0)) -> None:
        await workloads.ensure_primary(self.client, self.store, spec, self.settings, LOG)
        await workloads.ensure_primary_hpa(self.client, self.store, spec, self.settings, LOG)
        await routing.ensure_services(self.client, self.store, spec, self.settings, LOG, apex=True)
        await routing.ensure_routing(self.client, self.store, spec, *weights, log=LOG)


@pytest.fixture
async def rig(bed: Any, namespace: str) -> AsyncIterator[Rig]:
    client = await KubeClient.from_config(bed.kubeconfig, user_agent="canaryd-actuators")
    admin = await bed.admin_client()
    store = Store()
    informers = Informers(client, store, resources=KINDS, namespace=namespace)
    await informers.start()
    try:
        await informers.wait_synced(15)
        yield Rig(namespace, client, admin, store, Settings())
    finally:
        await informers.stop()
        await client.close()
        await admin.close()


async def _get(rig: Rig, res: r.Resource, name: str) -> dict[str, Any] | None:
    try:
        return await rig.admin.get(res, rig.ns, name)
    except NotFound:
        return None


async def test_tutorial_objects_created_with_selectors_and_owners(rig: Rig) -> None:
    ns = rig.ns
    await rig.apply(r.DEPLOYMENT, podinfo(ns))
    await rig.apply(r.HPA, podinfo_hpa(ns))
    spec = await rig.canary(tutorial_canary(ns))
    await rig.cached(r.DEPLOYMENT, "podinfo")
    await rig.cached(r.HPA, "podinfo")
    await rig.initialize(spec)

    owner = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": "podinfo", "uid": spec.uid,
             "controller": True, "blockOwnerDeletion": True}
    primary = await _get(rig, r.DEPLOYMENT, "podinfo-primary")
    assert primary is not None
    assert primary["metadata"]["ownerReferences"] == [owner]
    assert primary["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    assert primary["spec"]["template"]["metadata"]["labels"] == {"app": "podinfo-primary"}
    assert primary["spec"]["replicas"] == 2
    assert "flagger-id" in primary["spec"]["template"]["metadata"]["annotations"]

    hpa = await _get(rig, r.HPA, "podinfo-primary")
    assert hpa is not None and hpa["metadata"]["ownerReferences"] == [owner]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "podinfo-primary"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)

    for name, selector in (("podinfo", "podinfo-primary"), ("podinfo-primary", "podinfo-primary"),
                           ("podinfo-canary", "podinfo")):
        svc = await _get(rig, r.SERVICE, name)
        assert svc is not None, name
        assert svc["spec"]["selector"] == {"app": selector}
        assert svc["metadata"]["labels"] == {"app": name}
        assert svc["metadata"]["ownerReferences"] == [owner]
        ports = [(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]]
        assert ports == [("http", 9898, 9898)]

    for name in ("podinfo-primary", "podinfo-canary"):
        dr = await _get(rig, r.DESTINATION_RULE, name)
        assert dr is not None and dr["spec"] == {"host": name}
        assert dr["metadata"]["ownerReferences"] == [owner]

    vs = await _get(rig, r.VIRTUAL_SERVICE, "podinfo")
    assert vs is not None
    assert vs["metadata"]["ownerReferences"] == [owner]
    # stored exactly as sent: the CRD schema accepted every field and pruned none
    assert vs["spec"] == {
        "hosts": ["app.istio.example.com", "podinfo"],
        "gateways": ["public-gateway.istio-system.svc.cluster.local"],
        "http": [{"route": [{"destination": {"host": "podinfo-primary"}, "weight": 100},
                            {"destination": {"host": "podinfo-canary"}, "weight": 0}]}],
    }
    assert istio_objects.routes_of(vs) == (100, 0, False)

    # scaling the target to zero (and again: no request the second time)
    assert await workloads.scale(rig.client, rig.store, ns, "podinfo", 0)
    await wait_for(lambda: (rig.store.get("Deployment", ns, "podinfo") or {})["spec"]["replicas"] == 0, 10,
                   "target scaled to 0 in the cache")
    before = requests(rig.client, WRITE_VERBS)
    assert not await workloads.scale(rig.client, rig.store, ns, "podinfo", 0)
    assert requests(rig.client, WRITE_VERBS) == before


async def test_second_reconcile_sends_nothing(rig: Rig) -> None:
    ns = rig.ns
    await rig.apply(r.DEPLOYMENT, podinfo(ns))
    await rig.apply(r.HPA, podinfo_hpa(ns))
    spec = await rig.canary(tutorial_canary(ns))
    await rig.cached(r.DEPLOYMENT, "podinfo")
    await rig.cached(r.HPA, "podinfo")
    await rig.initialize(spec)
    # primary, primary HPA, 3 Services, 2 DestinationRules, the VirtualService
    assert requests(rig.client, WRITE_VERBS) == 8
    await rig.in_sync()
    writes, reads = requests(rig.client, WRITE_VERBS), requests(rig.client, READ_VERBS)
    await rig.initialize(spec)
    assert requests(rig.client, WRITE_VERBS) == writes, "a second reconcile wrote"
    assert requests(rig.client, READ_VERBS) == reads, "a second reconcile read from the API server"


async def test_set_routes_changes_only_weights(rig: Rig) -> None:
    ns = rig.ns
    await rig.apply(r.DEPLOYMENT, podinfo(ns))
    await rig.apply(r.HPA, podinfo_hpa(ns))
    raw = tutorial_canary(ns)
    raw["spec"]["service"].update({"timeout": "5s", "match": [{"uri": {"prefix": "/"}}],
                                   "retries": {"attempts": 3, "perTryTimeout": "1s"}})
    spec = await rig.canary(raw)
    await rig.cached(r.DEPLOYMENT, "podinfo")
    await rig.cached(r.HPA, "podinfo")
    await rig.initialize(spec)
    before = await _get(rig, r.VIRTUAL_SERVICE, "podinfo")
    assert before is not None

    writes = requests(rig.client, WRITE_VERBS)
    assert await routing.set_routes(rig.client, rig.store, spec, 95, 5, log=LOG)
    assert requests(rig.client, WRITE_VERBS) == writes + 1
    after = await _get(rig, r.VIRTUAL_SERVICE, "podinfo")
    assert after is not None and istio_objects.routes_of(after) == (95, 5, False)
    masked = copy.deepcopy(after["spec"])
    for dest in masked["http"][0]["route"]:
        dest["weight"] = {"podinfo-primary": 100, "podinfo-canary": 0}[dest["destination"]["host"]]
    assert masked == before["spec"]
    for key in ("labels", "annotations", "ownerReferences"):
        assert after["metadata"].get(key) == before["metadata"].get(key), key

    # the same weights again: nothing sent; a reconcile with the run's weights keeps them
    await rig.in_sync()
    writes = requests(rig.client, WRITE_VERBS)
    assert not await routing.set_routes(rig.client, rig.store, spec, 95, 5, log=LOG)
    assert await routing.ensure_routing(rig.client, rig.store, spec, 95, 5, log=LOG) == 0
    assert requests(rig.client, WRITE_VERBS) == writes

    # mirror on, then a spec edit mid-run: reconcile keeps 90/10 instead of resetting to 100/0
    assert await routing.set_routes(rig.client, rig.store, spec, 100, 0, True, log=LOG)
    mirrored = await _get(rig, r.VIRTUAL_SERVICE, "podinfo")
    assert mirrored is not None and istio_objects.routes_of(mirrored) == (100, 0, True)
    await routing.set_routes(rig.client, rig.store, spec, 90, 10, log=LOG)
    edited = CanarySpec(**{**spec.__dict__, "service": type(spec.service)(
        **{**spec.service.__dict__, "timeout": "9s"})})
    assert await routing.ensure_routing(rig.client, rig.store, edited, 90, 10, log=LOG) == 1
    final = await _get(rig, r.VIRTUAL_SERVICE, "podinfo")
    assert final is not None and istio_objects.routes_of(final) == (90, 10, False)
    assert final["spec"]["http"][0]["timeout"] == "9s"


def _primary_rolled(dep: dict[str, Any] | None, image: str) -> bool:
    if dep is None:
        return False
    spec, status = dep["spec"], dep.get("status") or {}
    return bool(
        spec["template"]["spec"]["containers"][0]["image"] == image
        and status.get("observedGeneration", 0) >= dep["metadata"]["generation"]
        and status.get("updatedReplicas") == spec["replicas"]
        and status.get("replicas") == spec["replicas"]
        and status.get("availableReplicas") == spec["replicas"]
    )


async def test_promote_copies_image_and_configs_and_primary_rolls(rig: Rig) -> None:
    ns = rig.ns
    await rig.apply(r.CONFIGMAP, {"metadata": {"name": "podinfo-config"}, "data": {"color": "blue"}})
    await rig.apply(r.SECRET, {"metadata": {"name": "podinfo-secret"}, "type": "Opaque",
                               "stringData": {"TOKEN": "one"}})
    await rig.apply(r.DEPLOYMENT, podinfo(ns, config=True))
    await rig.apply(r.HPA, podinfo_hpa(ns))
    spec = await rig.canary(tutorial_canary(ns))
    for res, name in ((r.DEPLOYMENT, "podinfo"), (r.HPA, "podinfo"), (r.CONFIGMAP, "podinfo-config"),
                      (r.SECRET, "podinfo-secret")):
        await rig.cached(res, name)
    await rig.initialize(spec)

    primary = await _get(rig, r.DEPLOYMENT, "podinfo-primary")
    assert primary is not None
    pod = primary["spec"]["template"]["spec"]
    assert pod["volumes"][0]["configMap"]["name"] == "podinfo-config-primary"
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "podinfo-secret-primary"}}]
    cm = await _get(rig, r.CONFIGMAP, "podinfo-config-primary")
    assert cm is not None and cm["data"] == {"color": "blue"}
    assert cm["metadata"]["ownerReferences"][0]["uid"] == spec.uid
    first = await wait_for(
        lambda: _primary_rolled_async(rig, "ghcr.io/stefanprodan/podinfo:6.0.0"), 60, "primary rolled out")
    first_id = first["spec"]["template"]["metadata"]["annotations"]["flagger-id"]

    # new revision: image and config data change; promotion copies both
    await rig.admin.patch(r.DEPLOYMENT, ns, "podinfo", {"spec": {"template": {"spec": {"containers": [
        {"name": "podinfod", "image": "ghcr.io/stefanprodan/podinfo:6.0.1"}]}}}}, patch_type="strategic")
    await rig.admin.patch(r.CONFIGMAP, ns, "podinfo-config", {"data": {"color": "green"}})
    await wait_for(lambda: _cached_image(rig, "podinfo").endswith("6.0.1"), 10, "target change cached")
    await wait_for(lambda: _checksum(rig, "podinfo-config") != _checksum(rig, "podinfo-config-primary"), 10,
                   "config change cached")
    assert await workloads.promote(rig.client, rig.store, spec, rig.settings, LOG, flagger_id="run-2")
    cm = await _get(rig, r.CONFIGMAP, "podinfo-config-primary")
    assert cm is not None and cm["data"] == {"color": "green"}
    rolled = await wait_for(
        lambda: _primary_rolled_async(rig, "ghcr.io/stefanprodan/podinfo:6.0.1"), 60,
        "primary rolled to 6.0.1")
    annotations = rolled["spec"]["template"]["metadata"]["annotations"]
    assert annotations["flagger-id"] == "run-2" != first_id
    assert rolled["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}

    # replaying the same promotion (e.g. after a crash) sends nothing
    await rig.in_sync()
    writes = requests(rig.client, WRITE_VERBS)
    assert not await workloads.promote(rig.client, rig.store, spec, rig.settings, LOG, flagger_id="run-2")
    assert requests(rig.client, WRITE_VERBS) == writes


def _cached_image(rig: Rig, name: str) -> str:
    dep = rig.store.get("Deployment", rig.ns, name) or {}
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


def _checksum(rig: Rig, name: str) -> str:
    return str((rig.store.get("ConfigMap", rig.ns, name) or {}).get("checksum"))


async def _primary_rolled_async(rig: Rig, image: str) -> dict[str, Any] | None:
    dep = await _get(rig, r.DEPLOYMENT, "podinfo-primary")
    return dep if _primary_rolled(dep, image) else None


INVALID = [
    ("no-selector-label",
     "deployment podinfo.{ns} spec.selector.matchLabels must contain one of "
     "[app name app.kubernetes.io/name]"),
    ("missing-configmap",
     'configmap podinfo-config.{ns} get query error: configmaps "podinfo-config" not found'),
    ("missing-hpa",
     'HorizontalPodAutoscaler podinfo.{ns} get query error: horizontalpodautoscalers.autoscaling "podinfo" '
     "not found"),
]


@pytest.mark.parametrize(("case", "message"), INVALID, ids=[c for c, _ in INVALID])
async def test_invalid_target_creates_nothing_until_fixed(rig: Rig, case: str, message: str) -> None:
    ns = rig.ns
    target = podinfo(ns, match={"tier": "web"} if case == "no-selector-label" else None,
                     config=case == "missing-configmap")
    await rig.apply(r.DEPLOYMENT, target)
    if case != "missing-hpa":
        await rig.apply(r.HPA, podinfo_hpa(ns))
        await rig.cached(r.HPA, "podinfo")
    if case == "missing-configmap":
        await rig.apply(r.SECRET, {"metadata": {"name": "podinfo-secret"}, "stringData": {"T": "x"}})
        await rig.cached(r.SECRET, "podinfo-secret")
    spec = await rig.canary(tutorial_canary(ns))
    await rig.cached(r.DEPLOYMENT, "podinfo")
    writes = requests(rig.client, WRITE_VERBS)
    calls: tuple[Callable[[], Awaitable[Any]], ...] = (
        lambda: workloads.ensure_primary(rig.client, rig.store, spec, rig.settings, LOG),
        lambda: routing.ensure_services(rig.client, rig.store, spec, rig.settings, LOG, apex=True),
        lambda: workloads.ensure_primary_hpa(rig.client, rig.store, spec, rig.settings, LOG),
        lambda: workloads.promote(rig.client, rig.store, spec, rig.settings, LOG),
    )
    # the HPA writer only checks its HPA: with the HPA present it would rightly create the primary HPA
    for call in calls if case == "missing-hpa" else calls[:2] + calls[3:]:
        with pytest.raises(GenerationError) as err:
            await call()
        assert str(err.value) == message.format(ns=ns)
    assert requests(rig.client, WRITE_VERBS) == writes
    for res in (r.DEPLOYMENT, r.SERVICE, r.CONFIGMAP, r.SECRET, r.HPA):
        items, _ = await rig.admin.list(res, ns)
        names = [i["metadata"]["name"] for i in items]
        assert not [n for n in names if n.endswith(("-primary", "-canary"))], names

    # fixing the input recovers without anything else
    if case == "no-selector-label":
        await rig.admin.delete(r.DEPLOYMENT, ns, "podinfo")
        await wait_for(lambda: rig.store.get("Deployment", ns, "podinfo") is None, 10,
                       "target gone from cache")
        await rig.apply(r.DEPLOYMENT, podinfo(ns))
        await wait_for(lambda: _cached_selector(rig) == {"app": "podinfo"}, 10, "fixed target cached")
    elif case == "missing-configmap":
        await rig.apply(r.CONFIGMAP, {"metadata": {"name": "podinfo-config"}, "data": {"a": "1"}})
        await rig.cached(r.CONFIGMAP, "podinfo-config")
    else:
        await rig.apply(r.HPA, podinfo_hpa(ns))
        await rig.cached(r.HPA, "podinfo")
    await rig.initialize(spec)
    assert await _get(rig, r.DEPLOYMENT, "podinfo-primary") is not None
    assert await _get(rig, r.VIRTUAL_SERVICE, "podinfo") is not None


def _cached_selector(rig: Rig) -> Any:
    return ((rig.store.get("Deployment", rig.ns, "podinfo") or {}).get("spec") or {}).get("selector", {}).get(
        "matchLabels")


async def test_takeover_of_existing_service_and_virtual_service(rig: Rig) -> None:
    ns = rig.ns
    await rig.apply(r.DEPLOYMENT, podinfo(ns))
    await rig.apply(r.HPA, podinfo_hpa(ns))
    await rig.apply(r.SERVICE, {"metadata": {"name": "podinfo", "labels": {"owner": "user"}},
                                "spec": {"selector": {"app": "podinfo"},
                                         "ports": [{"name": "http", "port": 9898, "targetPort": 9898}]}})
    user_vs = {"hosts": ["podinfo"], "http": [{"route": [{"destination": {"host": "podinfo"}}]}]}
    await rig.apply(r.VIRTUAL_SERVICE, {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
                                        "metadata": {"name": "podinfo"}, "spec": user_vs})
    spec = await rig.canary(tutorial_canary(ns))
    await rig.cached(r.SERVICE, "podinfo")
    await rig.cached(r.VIRTUAL_SERVICE, "podinfo")
    await rig.cached(r.HPA, "podinfo")
    await rig.initialize(spec)

    svc = await _get(rig, r.SERVICE, "podinfo")
    assert svc is not None
    assert svc["spec"]["selector"] == {"app": "podinfo-primary"}
    assert "ownerReferences" not in svc["metadata"]
    assert svc["metadata"]["labels"] == {"owner": "user"}
    assert '"selector":{"app":"podinfo"}' in svc["metadata"]["annotations"][generated.ORIGINAL_CONFIGURATION]
    vs = await _get(rig, r.VIRTUAL_SERVICE, "podinfo")
    assert vs is not None
    assert "ownerReferences" not in vs["metadata"]
    assert istio_objects.routes_of(vs) == (100, 0, False)
    assert json.loads(vs["metadata"]["annotations"][generated.ORIGINAL_CONFIGURATION]) == user_vs

    # the record survives later reconciles
    await rig.in_sync()
    await routing.set_routes(rig.client, rig.store, spec, 80, 20, log=LOG)
    await routing.ensure_routing(rig.client, rig.store, spec, 80, 20, log=LOG)
    vs = await _get(rig, r.VIRTUAL_SERVICE, "podinfo")
    assert vs is not None
    assert json.loads(vs["metadata"]["annotations"][generated.ORIGINAL_CONFIGURATION]) == user_vs

    # deleting the Canary collects what it owns and leaves what it took over
    await rig.admin.delete(r.CANARY, ns, "podinfo")
    await wait_for(lambda: _gone(rig, r.SERVICE, "podinfo-canary"), 60, "owned Service collected")
    assert await _get(rig, r.SERVICE, "podinfo") is not None
    assert await _get(rig, r.VIRTUAL_SERVICE, "podinfo") is not None


async def _gone(rig: Rig, res: r.Resource, name: str) -> bool:
    return await _get(rig, res, name) is None


async def test_deleting_the_canary_collects_owned_objects(rig: Rig) -> None:
    ns = rig.ns
    await rig.apply(r.CONFIGMAP, {"metadata": {"name": "podinfo-config"}, "data": {"a": "1"}})
    await rig.apply(r.SECRET, {"metadata": {"name": "podinfo-secret"}, "stringData": {"T": "x"}})
    await rig.apply(r.DEPLOYMENT, podinfo(ns, config=True))
    await rig.apply(r.HPA, podinfo_hpa(ns))
    spec = await rig.canary(tutorial_canary(ns))
    for res, name in ((r.DEPLOYMENT, "podinfo"), (r.HPA, "podinfo"), (r.CONFIGMAP, "podinfo-config"),
                      (r.SECRET, "podinfo-secret")):
        await rig.cached(res, name)
    await rig.initialize(spec)
    owned = [(r.DEPLOYMENT, "podinfo-primary"), (r.HPA, "podinfo-primary"), (r.SERVICE, "podinfo"),
             (r.SERVICE, "podinfo-primary"), (r.SERVICE, "podinfo-canary"),
             (r.DESTINATION_RULE, "podinfo-primary"), (r.DESTINATION_RULE, "podinfo-canary"),
             (r.VIRTUAL_SERVICE, "podinfo"), (r.CONFIGMAP, "podinfo-config-primary"),
             (r.SECRET, "podinfo-secret-primary")]
    for res, name in owned:
        assert await _get(rig, res, name) is not None, (res.kind, name)
    await rig.admin.delete(r.CANARY, ns, "podinfo")

    async def all_gone() -> bool:
        return all([await _gone(rig, res, name) for res, name in owned])

    await wait_for(all_gone, 60, "garbage collection of the Canary's objects")
    for res, name in ((r.DEPLOYMENT, "podinfo"), (r.HPA, "podinfo"), (r.CONFIGMAP, "podinfo-config"),
                      (r.SECRET, "podinfo-secret")):
        assert await _get(rig, res, name) is not None, f"{res.kind} {name} is the user's and must stay"


def _canary_v1beta1(ns: str, name: str, service: dict[str, Any], **analysis: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"name": name, "port": 9898, **service},
            "analysis": {"interval": "2s", "threshold": 2,
                         **({} if "iterations" in analysis else {"stepWeight": 10}), **analysis},
        },
    }


HTTP_OPTIONS = {
    "match": [{"uri": {"prefix": "/api"}}, {"headers": {"x-user": {"exact": "test"}}}],
    "rewrite": {"uri": "/", "authority": "podinfo.internal"},
    "timeout": "5s",
    "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "gateway-error,connect-failure"},
    "headers": {"request": {"add": {"x-envoy-upstream-rq-timeout-ms": "15000"}, "remove": ["x-debug"]},
                "response": {"set": {"x-canary": "maybe"}}},
    "corsPolicy": {"allowOrigins": [{"exact": "https://example.com"}], "allowMethods": ["GET", "POST"],
                   "allowHeaders": ["x-user"], "maxAge": "24h", "allowCredentials": True},
    "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}, "loadBalancer": {"simple": "LEAST_REQUEST"},
                      "outlierDetection": {"consecutive5xxErrors": 5, "interval": "10s"}},
}
SHAPES: list[tuple[str, dict[str, Any], dict[str, Any], tuple[int, int, bool]]] = [
    ("http-options", {**HTTP_OPTIONS, "gateways": ["public-gateway.istio-system.svc.cluster.local"],
                      "hosts": ["app.example.com"]}, {"maxWeight": 50}, (90, 10, False)),
    ("ab", {"match": [{"uri": {"prefix": "/"}}]},
     {"iterations": 5, "match": [{"headers": {"x-canary": {"exact": "insider"}}},
                                 {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}]},
     (0, 100, False)),
    ("mirror", {}, {"mirror": True, "mirrorWeight": 25, "iterations": 5}, (100, 0, True)),
    ("tcp", {"appProtocol": "tcp", "match": [{"port": 9898}]}, {}, (70, 30, False)),
    ("delegate", {"delegation": True, "portDiscovery": True}, {}, (100, 0, False)),
    ("discovery-gw", {"portDiscovery": True, "gateways": ["public-gateway"], "targetPort": "http"}, {},
     (95, 5, False)),
]


@pytest.mark.parametrize(("name", "service", "analysis", "weights"), SHAPES, ids=[s[0] for s in SHAPES])
async def test_virtual_service_shapes_accepted_by_istio_schema(
    rig: Rig, name: str, service: dict[str, Any], analysis: dict[str, Any], weights: tuple[int, int, bool]
) -> None:
    ns = rig.ns
    spec = parse_canary(await rig.admin.create(r.CANARY, ns, _canary_v1beta1(ns, name, service, **analysis)))
    assert isinstance(spec, CanarySpec), spec
    await routing.ensure_routing(rig.client, rig.store, spec, *weights, log=LOG)
    vs = await _get(rig, r.VIRTUAL_SERVICE, name)
    assert vs is not None
    # stored exactly as built: the schema accepted every field and pruned none
    assert vs["spec"] == istio_objects.virtual_service_spec(spec, *weights)
    assert istio_objects.routes_of(vs) == weights
    for dr_name in (f"{name}-canary", f"{name}-primary"):
        dr = await _get(rig, r.DESTINATION_RULE, dr_name)
        assert dr is not None
        assert dr["spec"] == {"host": dr_name, **({"trafficPolicy": service["trafficPolicy"]}
                                                  if "trafficPolicy" in service else {})}
    # and reconciling again with the same weights sends nothing
    await rig.in_sync()
    writes = requests(rig.client, WRITE_VERBS)
    assert await routing.ensure_routing(rig.client, rig.store, spec, *weights, log=LOG) == 0
    assert requests(rig.client, WRITE_VERBS) == writes
