"""Tables for the pure builders: the tutorial Canary gives exactly the objects of flagger-reference.md §4."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from canaryd.actuators import generated, istio_objects, primary_objects, service_objects
from canaryd.actuators.generated import GenerationError

from .fixtures import (
    OWNER,
    TOOLKIT,
    Gen,
    podinfo_deployment,
    podinfo_hpa,
    tutorial_spec,
    with_analysis,
    with_config,
)

GEN = Gen()


# ---- selector label -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ({"app": "podinfo"}, ("app", "podinfo")),
        ({"name": "pi", "app.kubernetes.io/name": "x"}, ("name", "pi")),
        ({"app.kubernetes.io/name": "x", "tier": "web"}, ("app.kubernetes.io/name", "x")),
        ({"app": "a", "name": "n"}, ("app", "a")),
    ],
)
def test_selector_label_is_first_configured_present(match: dict[str, str], expected: tuple[str, str]) -> None:
    dep = podinfo_deployment()
    dep["spec"]["selector"]["matchLabels"] = match
    assert generated.selector_label(dep, GEN.selector_labels) == expected


def test_selector_label_missing_has_flaggers_message() -> None:
    dep = podinfo_deployment()
    dep["spec"]["selector"]["matchLabels"] = {"tier": "web"}
    with pytest.raises(GenerationError) as err:
        generated.selector_label(dep, GEN.selector_labels)
    assert str(err.value) == (
        "deployment podinfo.test spec.selector.matchLabels must contain one of "
        "[app name app.kubernetes.io/name]"
    )


def test_selector_label_custom_list() -> None:
    dep = podinfo_deployment()
    dep["spec"]["selector"]["matchLabels"] = {"svc": "pi"}
    assert generated.selector_label(dep, ("svc",)) == ("svc", "pi")


# ---- metadata filters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefixes", "expected"),
    [
        ((), {}),
        (("",), {}),
        (("*",), {"app": "podinfo", "team": "blue", "app.kubernetes.io/part-of": "demo"}),
        (("app",), {"app": "podinfo", "app.kubernetes.io/part-of": "demo"}),
        (("team", "app.kubernetes.io"), {"team": "blue", "app.kubernetes.io/part-of": "demo"}),
    ],
)
def test_include_by_prefix(prefixes: tuple[str, ...], expected: dict[str, str]) -> None:
    labels = {"app": "podinfo", "team": "blue", "app.kubernetes.io/part-of": "demo",
              "kustomize.toolkit.fluxcd.io/name": "flux"}
    assert generated.include_by_prefix(labels, prefixes) == expected


def test_owner_reference() -> None:
    assert generated.owner_reference(tutorial_spec()) == OWNER


@pytest.mark.parametrize(
    ("refs", "owned"),
    [
        (None, False),
        ([OWNER], True),
        ([{**OWNER, "name": "other"}], False),
        ([{"kind": "HelmRelease", "name": "podinfo"}], False),
    ],
)
def test_owned_by(refs: list[dict[str, Any]] | None, owned: bool) -> None:
    obj: dict[str, Any] = {"metadata": {"name": "podinfo"}}
    if refs is not None:
        obj["metadata"]["ownerReferences"] = refs
    assert generated.owned_by(obj, tutorial_spec()) is owned


# ---- primary Deployment ---------------------------------------------------------------------------


def test_tutorial_primary_deployment_exact() -> None:
    body = primary_objects.primary_deployment(tutorial_spec(), podinfo_deployment(), GEN, tracked=(),
                                              flagger_id="uuid-1")
    assert body == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "podinfo-primary",
            "namespace": "test",
            "labels": {"app": "podinfo-primary"},
            "annotations": {"note": "kept"},
            "ownerReferences": [OWNER],
        },
        "spec": {
            "minReadySeconds": 5,
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": 60,
            "strategy": {"rollingUpdate": {"maxUnavailable": 0}, "type": "RollingUpdate"},
            "replicas": 1,
            "selector": {"matchLabels": {"app": "podinfo-primary"}},
            "template": {
                "metadata": {
                    "labels": {"app": "podinfo-primary"},
                    "annotations": {"prometheus.io/scrape": "true", "flagger-id": "uuid-1"},
                },
                "spec": podinfo_deployment()["spec"]["template"]["spec"],
            },
        },
    }


@pytest.mark.parametrize(("replicas", "expected"), [(None, 1), (0, 1), (3, 3)])
def test_primary_replicas(replicas: int | None, expected: int) -> None:
    dep = podinfo_deployment(replicas=replicas)
    body = primary_objects.primary_deployment(tutorial_spec(), dep, GEN, tracked=(), flagger_id="u")
    assert body["spec"]["replicas"] == expected


@pytest.mark.parametrize(
    ("prefixes", "labels"),
    [
        ((), {"app": "podinfo-primary"}),
        (("team",), {"team": "blue", "app": "podinfo-primary"}),
        (("*",), {"team": "blue", "app": "podinfo-primary"}),
    ],
)
def test_primary_labels_by_include_prefix(prefixes: tuple[str, ...], labels: dict[str, str]) -> None:
    body = primary_objects.primary_deployment(tutorial_spec(), podinfo_deployment(),
                                              Gen(include_label_prefix=prefixes), tracked=(), flagger_id="u")
    assert body["metadata"]["labels"] == labels


def test_primary_with_other_selector_label_keeps_other_pod_labels() -> None:
    dep = podinfo_deployment()
    dep["spec"]["selector"]["matchLabels"] = {"app.kubernetes.io/name": "pi"}
    dep["spec"]["template"]["metadata"]["labels"] = {"app.kubernetes.io/name": "pi", "version": "v1"}
    body = primary_objects.primary_deployment(tutorial_spec(), dep, GEN, tracked=(), flagger_id="u")
    assert body["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "pi-primary"}}
    assert body["spec"]["template"]["metadata"]["labels"] == {"app.kubernetes.io/name": "pi-primary",
                                                              "version": "v1"}


def test_primary_pod_spec_renames_tracked_configs_and_selectors() -> None:
    dep = with_config(podinfo_deployment())
    tracked = ("configmap/podinfo-config", "configmap/podinfo-env", "configmap/podinfo-envfrom",
               "configmap/podinfo-proj", "secret/podinfo-secret", "secret/podinfo-init")
    pod = primary_objects.primary_pod_spec(dep, tracked)
    assert [v.get("configMap") or v.get("secret") or v.get("projected") for v in pod["volumes"]] == [
        {"name": "podinfo-config-primary"},
        {"secretName": "podinfo-secret-primary"},
        {"sources": [{"configMap": {"name": "podinfo-proj-primary"}},
                     {"secret": {"name": "podinfo-secret-primary"}}]},
    ]
    env = pod["containers"][0]["env"]
    assert env[0]["valueFrom"]["configMapKeyRef"]["name"] == "podinfo-env-primary"
    assert env[1]["valueFrom"]["secretKeyRef"]["name"] == "podinfo-secret-primary"
    assert env[2]["valueFrom"]["configMapKeyRef"]["name"] == "maybe"  # not tracked (missing optional)
    assert env[3] == {"name": "D", "value": "plain"}
    assert pod["containers"][0]["envFrom"] == [{"configMapRef": {"name": "podinfo-envfrom-primary"}}]
    assert pod["initContainers"][0]["envFrom"] == [{"secretRef": {"name": "podinfo-init-primary"}}]
    anti = pod["affinity"]["podAntiAffinity"]
    assert anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["labelSelector"] == {
        "matchLabels": {"app": "podinfo-primary"}}
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["labelSelector"] == {
        "matchLabels": {"app": "podinfo-primary", "x": "y"}}
    assert pod["topologySpreadConstraints"][0]["labelSelector"] == {"matchLabels": {"app": "podinfo-primary"}}
    assert "labelSelector" not in pod["topologySpreadConstraints"][1]
    # the source is untouched
    assert dep == with_config(podinfo_deployment())


def test_primary_pod_spec_without_tracking_renames_no_config() -> None:
    dep = with_config(podinfo_deployment())
    pod = primary_objects.primary_pod_spec(dep, ())
    assert pod["volumes"] == dep["spec"]["template"]["spec"]["volumes"]
    assert pod["containers"] == dep["spec"]["template"]["spec"]["containers"]


def test_promotion_copies_template_and_rollout_fields() -> None:
    dep = podinfo_deployment(image="podinfo:2", replicas=3)
    dep["spec"].pop("minReadySeconds")
    no_hpa = tutorial_spec().__class__(**{**tutorial_spec().__dict__, "autoscaler": None})
    out = primary_objects.promotion(no_hpa, dep, Gen(include_label_prefix=("team",)), tracked=(),
                                    flagger_id="u2")
    assert out["spec"]["replicas"] == 3
    assert out["spec"]["minReadySeconds"] == 0
    assert out["spec"]["strategy"] == dep["spec"]["strategy"]
    assert out["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:2"
    assert out["spec"]["template"]["metadata"]["annotations"]["flagger-id"] == "u2"
    assert out["labels"] == {"team": "blue", "app": "podinfo-primary"}
    assert out["annotations"] == {}
    with_hpa = primary_objects.promotion(tutorial_spec(), dep, GEN, tracked=(), flagger_id="u2")
    assert "replicas" not in with_hpa["spec"]


@pytest.mark.parametrize(
    ("target_replicas", "hpa_min", "primary_replicas", "autoscaler", "expected"),
    [
        (2, None, None, True, 2),
        (0, 3, None, True, 3),
        (0, 1, None, True, 1),
        (None, None, None, True, 1),
        (0, None, 4, False, 4),
        (0, None, 0, False, 1),
        (None, None, None, False, 1),
    ],
)
def test_canary_replicas(target_replicas: int | None, hpa_min: int | None, primary_replicas: int | None,
                         autoscaler: bool, expected: int) -> None:
    spec = tutorial_spec()
    if not autoscaler:
        spec = spec.__class__(**{**spec.__dict__, "autoscaler": None})
    hpa = podinfo_hpa() if autoscaler else None
    if hpa is not None:
        if hpa_min is None:
            hpa["spec"].pop("minReplicas")
        else:
            hpa["spec"]["minReplicas"] = hpa_min
    primary = podinfo_deployment(replicas=primary_replicas) if primary_replicas is not None else None
    target = podinfo_deployment(replicas=target_replicas)
    assert primary_objects.canary_replicas(spec, target, hpa, primary) == expected


# ---- config copies and HPA ------------------------------------------------------------------------


def test_config_copy_configmap() -> None:
    source = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "podinfo-config", "namespace": "test", "uid": "u", "resourceVersion": "5",
                     "labels": {"app": "podinfo", "kustomize.toolkit.fluxcd.io/name": "f"},
                     "annotations": {"a": "b", "kubectl.kubernetes.io/last-applied-configuration": "{}"},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "HelmRelease", "name": "h", "uid": "1",
                                          "controller": True}]},
        "data": {"k": "v"},
        "binaryData": {"bin": "AAE="},
        "immutable": True,
    }
    assert primary_objects.config_copy(tutorial_spec(), source, Gen(include_label_prefix=("*",))) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "podinfo-config-primary",
            "namespace": "test",
            "labels": {"app": "podinfo"},
            "annotations": {"a": "b"},
            "ownerReferences": [OWNER, {"apiVersion": "v1", "kind": "HelmRelease", "name": "h", "uid": "1",
                                        "controller": False}],
        },
        "data": {"k": "v"},
        "binaryData": {"bin": "AAE="},
    }


def test_config_copy_secret_keeps_type() -> None:
    source = {"kind": "Secret", "metadata": {"name": "s", "labels": {"app": "x"}},
              "type": "kubernetes.io/tls", "data": {"tls.crt": "Y3J0"}}
    body = primary_objects.config_copy(tutorial_spec(), source, GEN)
    assert body["kind"] == "Secret"
    assert body["type"] == "kubernetes.io/tls"
    assert body["data"] == {"tls.crt": "Y3J0"}
    assert "labels" not in body["metadata"]  # no include prefix => none
    assert body["metadata"]["ownerReferences"] == [OWNER]


def test_tutorial_primary_hpa_exact() -> None:
    assert primary_objects.primary_hpa(tutorial_spec(), podinfo_hpa(), GEN) == {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": "podinfo-primary",
            "namespace": "test",
            "labels": {"app": "podinfo"},
            "ownerReferences": [OWNER],
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo-primary"},
            "minReplicas": 2,
            "maxReplicas": 4,
            "metrics": podinfo_hpa()["spec"]["metrics"],
        },
    }


def test_primary_hpa_behavior_and_promotion_metadata() -> None:
    hpa = podinfo_hpa()
    hpa["spec"]["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": 60}}
    hpa["metadata"]["annotations"] = {"team/x": "1", "other": "2"}
    body = primary_objects.primary_hpa(tutorial_spec(), hpa, Gen(include_label_prefix=("team",)),
                                       promoting=True)
    assert body["spec"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 60}}
    assert body["metadata"].get("labels") is None
    assert body["metadata"]["annotations"] == {"team/x": "1"}


# ---- Services -------------------------------------------------------------------------------------


def _svc(name: str, selector: str, labels: dict[str, str] | None = None,
         annotations: dict[str, str] | None = None,
         ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": "test",
            "labels": labels or {"app": name},
            "annotations": annotations or TOOLKIT,
            "ownerReferences": [OWNER],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {"app": selector},
            "ports": ports or [{"name": "http", "protocol": "TCP", "port": 9898, "targetPort": 9898}],
        },
    }


def test_tutorial_services_exact() -> None:
    assert service_objects.services(tutorial_spec(), podinfo_deployment(), GEN) == {
        "apex": _svc("podinfo", "podinfo-primary"),
        "primary": _svc("podinfo-primary", "podinfo-primary"),
        "canary": _svc("podinfo-canary", "podinfo"),
    }


def test_services_custom_metadata_headless_port_options() -> None:
    spec = tutorial_spec(
        port=80, port_name="web", target_port="http", app_protocol="http", headless=True,
        apex={"labels": {"l": "a"}, "annotations": {"x": "1"}},
        canary={"labels": {"app": "ignored", "c": "1"}},
    )
    out = service_objects.services(spec, podinfo_deployment(), GEN)
    port = [{"name": "web", "protocol": "TCP", "port": 80, "targetPort": "http", "appProtocol": "http"}]
    apex_spec = {"type": "ClusterIP", "selector": {"app": "podinfo-primary"}, "ports": port,
                 "clusterIP": "None"}
    assert out["apex"] == {**_svc("podinfo", "podinfo-primary", {"l": "a", "app": "podinfo"},
                                  {"x": "1", **TOOLKIT}, port), "spec": apex_spec}
    assert out["canary"]["metadata"]["labels"] == {"app": "podinfo-canary", "c": "1"}
    assert out["primary"]["spec"]["clusterIP"] == "None"


@pytest.mark.parametrize(
    ("target_port", "excluded"),
    [(None, 9898), (9898, 9898), ("http", 9898), (8080, 8080), ("admin", 9999)],
)
def test_port_discovery(target_port: int | str | None, excluded: int) -> None:
    dep = podinfo_deployment()
    c = dep["spec"]["template"]["spec"]["containers"]
    c[0]["ports"] = [{"name": "http", "containerPort": 9898}, {"containerPort": 8080},
                     {"name": "admin", "containerPort": 9999}]
    c.append({"name": "istio-proxy", "ports": [{"name": "http-envoy-prom", "containerPort": 15090}]})
    c.append({"name": "sidecar", "ports": [{"name": "grpc", "containerPort": 9000}]})
    spec = tutorial_spec(port_discovery=True, target_port=target_port)
    ports = service_objects.services(spec, dep, GEN)["canary"]["spec"]["ports"]
    first_target = target_port if target_port is not None else 9898
    extra = [
        {"name": "admin", "protocol": "TCP", "port": 9999, "targetPort": 9999},
        {"name": "grpc", "protocol": "TCP", "port": 9000, "targetPort": 9000},
        {"name": "http", "protocol": "TCP", "port": 9898, "targetPort": 9898},
        {"name": "tcp-podinfod-1", "protocol": "TCP", "port": 8080, "targetPort": 8080},
    ]
    assert ports == [{"name": "http", "protocol": "TCP", "port": 9898, "targetPort": first_target},
                     *[p for p in extra if p["port"] != excluded]]


@pytest.mark.parametrize(
    ("live", "same"),
    [
        ([{"name": "http", "protocol": "TCP", "port": 9898, "targetPort": 9898}], True),
        ([{"name": "http", "port": 9898, "targetPort": 9898, "nodePort": 31000}], True),
        ([{"name": "http", "protocol": "TCP", "port": 9898, "targetPort": 8080}], False),
        ([], False),
    ],
)
def test_same_ports(live: list[dict[str, Any]], same: bool) -> None:
    want = [{"name": "http", "protocol": "TCP", "port": 9898, "targetPort": 9898}]
    assert service_objects.same_ports(want, live) is same


# ---- DestinationRules -----------------------------------------------------------------------------


def test_destination_rules() -> None:
    canary, primary = istio_objects.destination_rules(tutorial_spec())
    assert canary == {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "DestinationRule",
        "metadata": {"name": "podinfo-canary", "namespace": "test", "ownerReferences": [OWNER]},
        "spec": {"host": "podinfo-canary"},
    }
    assert primary["spec"] == {"host": "podinfo-primary"}
    tp = {"tls": {"mode": "ISTIO_MUTUAL"}}
    assert istio_objects.destination_rules(tutorial_spec(traffic_policy=tp))[1]["spec"] == {
        "host": "podinfo-primary", "trafficPolicy": tp}


# ---- VirtualService -------------------------------------------------------------------------------


def _route(primary: int, canary: int, port: int | None = None) -> list[dict[str, Any]]:
    def dest(host: str) -> dict[str, Any]:
        return {"host": host, "port": {"number": port}} if port else {"host": host}
    return [{"destination": dest("podinfo-primary"), "weight": primary},
            {"destination": dest("podinfo-canary"), "weight": canary}]


def test_tutorial_virtual_service_exact() -> None:
    assert istio_objects.virtual_service(tutorial_spec(), 100, 0) == {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "podinfo", "namespace": "test", "annotations": TOOLKIT,
                     "ownerReferences": [OWNER]},
        "spec": {
            "hosts": ["app.istio.example.com", "podinfo"],
            "gateways": ["public-gateway.istio-system.svc.cluster.local"],
            "http": [{"route": _route(100, 0)}],
        },
    }


@pytest.mark.parametrize(
    ("service", "hosts", "gateways"),
    [
        ({"hosts": (), "gateways": ()}, ["podinfo"], ["mesh"]),
        ({"hosts": (), "gateways": ("mesh",)}, ["podinfo"], ["mesh"]),
        ({"hosts": ("podinfo",), "gateways": ("gw", "mesh")}, ["podinfo"], ["gw", "mesh"]),
        ({"hosts": ("*",)}, ["*"], ["public-gateway.istio-system.svc.cluster.local"]),
        ({"hosts": ("a.example.com", "b.example.com")}, ["a.example.com", "b.example.com", "podinfo"],
         ["public-gateway.istio-system.svc.cluster.local"]),
    ],
)
def test_vs_hosts_and_gateways(service: dict[str, Any], hosts: list[str], gateways: list[str]) -> None:
    vs = istio_objects.virtual_service_spec(tutorial_spec(**service), 100, 0)
    assert (vs["hosts"], vs["gateways"]) == (hosts, gateways)


def test_vs_http_options_copied() -> None:
    spec = tutorial_spec(
        match=({"uri": {"prefix": "/"}},),
        rewrite={"uri": "/", "type": "ReplacePrefixMatch"},
        timeout="5s",
        retries={"perTryTimeout": "1s", "retryOn": "gateway-error"},
        headers={"request": {"add": {"x-envoy-upstream-rq-timeout-ms": "15000"}}},
        cors_policy={"allowOrigins": [{"exact": "https://example.com"}], "allowMethods": ["GET"]},
    )
    assert istio_objects.virtual_service_spec(spec, 90, 10)["http"] == [{
        "match": [{"uri": {"prefix": "/"}}],
        "rewrite": {"uri": "/"},
        "timeout": "5s",
        "retries": {"attempts": 0, "perTryTimeout": "1s", "retryOn": "gateway-error"},
        "corsPolicy": {"allowOrigins": [{"exact": "https://example.com"}], "allowMethods": ["GET"]},
        "headers": {"request": {"add": {"x-envoy-upstream-rq-timeout-ms": "15000"}}},
        "route": _route(90, 10),
    }]


@pytest.mark.parametrize(("mirror_weight", "pct"), [(0, None), (25, {"value": 25.0})])
def test_vs_mirror(mirror_weight: int, pct: dict[str, float] | None) -> None:
    spec = with_analysis(tutorial_spec(), mirror=True, mirror_weight=mirror_weight)
    route = istio_objects.virtual_service_spec(spec, 100, 0, mirror=True)["http"][0]
    assert route["mirror"] == {"host": "podinfo-canary"}
    assert route.get("mirrorPercentage") == pct
    assert route["route"] == _route(100, 0)
    assert "mirror" not in istio_objects.virtual_service_spec(spec, 100, 0, mirror=False)["http"][0]


def test_vs_ab_two_routes() -> None:
    ab = ({"headers": {"x-canary": {"exact": "insider"}}},
          {"headers": {"cookie": {"regex": "^(.*?;)?(c=1)"}}})
    spec = with_analysis(tutorial_spec(match=({"uri": {"prefix": "/api"}, "headers": {"h": {"exact": "1"}}},),
                                       timeout="3s"),
                         iterations=10, match=ab)
    http = istio_objects.virtual_service_spec(spec, 0, 100)["http"]
    assert http == [
        {
            "match": [
                {"uri": {"prefix": "/api"}, "headers": {"x-canary": {"exact": "insider"}}},
                {"uri": {"prefix": "/api"}, "headers": {"cookie": {"regex": "^(.*?;)?(c=1)"}}},
            ],
            "timeout": "3s",
            "route": _route(0, 100),
        },
        {
            "match": [{"uri": {"prefix": "/api"}, "headers": {"h": {"exact": "1"}}}],
            "timeout": "3s",
            "route": [{"destination": {"host": "podinfo-primary"}, "weight": 0}],
        },
    ]
    initial = istio_objects.virtual_service_spec(spec, 100, 0)["http"]
    assert initial[0]["route"] == _route(100, 0)
    assert initial[1]["route"] == [{"destination": {"host": "podinfo-primary"}, "weight": 100}]


def test_vs_ab_without_service_match() -> None:
    ab = ({"headers": {"x-canary": {"exact": "1"}}, "sourceLabels": {"app": "x"}},)
    spec = with_analysis(tutorial_spec(), iterations=5, match=ab)
    http = istio_objects.virtual_service_spec(spec, 100, 0)["http"]
    assert http[0]["match"] == list(ab)
    assert "match" not in http[1]


def test_merge_matches_replaces_headers_and_source_labels_only() -> None:
    canary: list[dict[str, Any]] = [{"headers": {"a": {"exact": "1"}}, "uri": {"exact": "/dropped"}},
                                    {"sourceLabels": {"s": "1"}}]
    service: list[dict[str, Any]] = [{"uri": {"prefix": "/"}, "headers": {"old": {"exact": "x"}}},
                                     {"method": {"exact": "GET"}}]
    assert istio_objects.merge_matches(canary, service) == [
        {"uri": {"prefix": "/"}, "headers": {"a": {"exact": "1"}}},
        {"method": {"exact": "GET"}, "headers": {"a": {"exact": "1"}}},
        {"uri": {"prefix": "/"}, "headers": {"old": {"exact": "x"}}, "sourceLabels": {"s": "1"}},
        {"method": {"exact": "GET"}, "sourceLabels": {"s": "1"}},
    ]


def test_vs_tcp() -> None:
    spec = tutorial_spec(app_protocol="TCP", match=({"port": 9898},), gateways=("mesh",), hosts=())
    assert istio_objects.virtual_service_spec(spec, 80, 20) == {
        "hosts": ["podinfo"],
        "gateways": ["mesh"],
        "tcp": [{"match": [{"port": 9898}], "route": _route(80, 20)}],
    }
    tcp_spec = tutorial_spec(app_protocol="tcp", gateways=())
    assert istio_objects.virtual_service_spec(tcp_spec, 100, 0)["tcp"] == [
        {"route": _route(100, 0)}]


def test_vs_delegation() -> None:
    spec = tutorial_spec(delegation=True, hosts=(), gateways=())
    vs = istio_objects.virtual_service(spec, 100, 0)
    assert vs["spec"] == {"hosts": [], "http": [{"route": _route(100, 0)}]}
    with_port = istio_objects.virtual_service_spec(tutorial_spec(delegation=True, hosts=(), gateways=(),
                                                                 port_discovery=True), 100, 0)
    assert with_port["http"][0]["route"] == _route(100, 0, port=9898)


@pytest.mark.parametrize("service", [{"hosts": ("a.example.com",), "gateways": ()},
                                     {"hosts": (), "gateways": ("gw",)}])
def test_vs_delegation_with_hosts_or_gateways_is_an_error(service: dict[str, Any]) -> None:
    with pytest.raises(GenerationError) as err:
        istio_objects.virtual_service(tutorial_spec(delegation=True, **service), 100, 0)
    assert str(err.value) == (
        "VirtualService podinfo.test cannot have hosts and gateways when delegation enabled")


@pytest.mark.parametrize(
    ("gateways", "discovery", "port"),
    [
        (("public-gateway",), True, 9898),
        (("mesh", "public-gateway"), True, None),
        (("public-gateway",), False, None),
        ((), True, None),
    ],
)
def test_vs_destination_port(gateways: tuple[str, ...], discovery: bool, port: int | None) -> None:
    spec = tutorial_spec(gateways=gateways, port_discovery=discovery)
    assert istio_objects.virtual_service_spec(spec, 100, 0)["http"][0]["route"] == _route(100, 0, port=port)


def test_vs_apex_metadata() -> None:
    spec = tutorial_spec(apex={"labels": {"a": "1"}, "annotations": {"n": "2"}})
    meta = istio_objects.virtual_service(spec, 100, 0)["metadata"]
    assert meta["labels"] == {"a": "1"}
    assert meta["annotations"] == {"n": "2", **TOOLKIT}


# ---- routes_of ------------------------------------------------------------------------------------


def _vs(http: list[dict[str, Any]] | None = None, tcp: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"hosts": ["podinfo"]}
    if http is not None:
        spec["http"] = http
    if tcp is not None:
        spec["tcp"] = tcp
    return {"metadata": {"name": "podinfo"}, "spec": spec}


@pytest.mark.parametrize(
    ("vs", "expected"),
    [
        (_vs([{"route": _route(100, 0)}]), (100, 0, False)),
        (_vs([{"route": _route(60, 40)}]), (60, 40, False)),
        (_vs([{"route": _route(100, 0), "mirror": {"host": "podinfo-canary"}}]), (100, 0, True)),
        (_vs([{"route": _route(100, 0), "mirror": {"host": ""}}]), (100, 0, False)),
        (_vs([{"route": [{"destination": {"host": "other"}, "weight": 100}]}, {"route": _route(30, 70)}]),
         (30, 70, False)),
        (_vs(tcp=[{"route": _route(90, 10)}]), (90, 10, False)),
        (_vs([{"route": [{"destination": {"host": "podinfo-primary"}, "weight": 100}]}]), None),
        (_vs([{"route": _route(0, 0)}]), None),
        (_vs([{"route": [{"destination": {"host": "podinfo-primary"}},
                         {"destination": {"host": "podinfo-canary"}, "weight": 100}]}]), (0, 100, False)),
        (_vs(), None),
    ],
)
def test_routes_of(vs: dict[str, Any], expected: tuple[int, int, bool] | None) -> None:
    assert istio_objects.routes_of(vs) == expected


@pytest.mark.parametrize(("p", "c", "mirror"),
                         [(100, 0, False), (95, 5, False), (50, 50, False), (100, 0, True)])
def test_routes_roundtrip(p: int, c: int, mirror: bool) -> None:
    spec = with_analysis(tutorial_spec(), mirror=True)
    assert istio_objects.routes_of(istio_objects.virtual_service(spec, p, c, mirror)) == (p, c, mirror)


def test_ab_routes_roundtrip() -> None:
    spec = with_analysis(tutorial_spec(), iterations=3, match=({"headers": {"x": {"exact": "1"}}},))
    assert istio_objects.routes_of(istio_objects.virtual_service(spec, 0, 100)) == (0, 100, False)


def test_builders_do_not_mutate_inputs() -> None:
    dep = with_config(podinfo_deployment())
    before = copy.deepcopy(dep)
    body = primary_objects.primary_deployment(tutorial_spec(), dep, GEN,
                                              tracked=("configmap/podinfo-config",), flagger_id="u")
    body["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    service_objects.services(tutorial_spec(), dep, GEN)
    assert dep == before
