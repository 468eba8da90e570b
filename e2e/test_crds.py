"""The CRDs on the bed's real API server, used the way users use them: kubectl apply/get/wait.

Good Canaries (the 2019 tutorial's v1alpha3 one, a v1beta1 one using every field) are accepted and kept
as written; bad ones are refused at admission with a message that says what is wrong; the status
subresource takes everything canaryd writes and drives ``kubectl wait --for=condition=promoted``.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from canaryd.model.parse import parse_canary
from canaryd.model.spec import CanarySpec
from e2e.duration_cases import CASES
from e2e.kubectl import Kubectl

ROOT = Path(__file__).resolve().parents[1]

# The tutorial's Canary (docs/flagger-reference.md §13), verbatim apart from the namespace.
TUTORIAL = """
apiVersion: flagger.app/v1alpha3
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  progressDeadlineSeconds: 60
  autoscalerRef: {apiVersion: autoscaling/v2beta1, kind: HorizontalPodAutoscaler, name: podinfo}
  service:
    port: 9898
    gateways: [public-gateway.istio-system.svc.cluster.local]
    hosts: [app.istio.example.com]
  canaryAnalysis:
    interval: 30s
    threshold: 10
    maxWeight: 50
    stepWeight: 5
    metrics:
    - {name: istio_requests_total, threshold: 99, interval: 30s}          # success rate >= 99 %
    - {name: istio_request_duration_seconds_bucket, threshold: 500, interval: 30s}  # P99 <= 500 ms
    webhooks:
    - name: load-test
      url: http://flagger-loadtester.test/
      timeout: 5s
      metadata: {cmd: "hey -z 1m -q 10 -c 2 http://podinfo.test:9898/"}
"""


def tutorial(ns: str, name: str = "podinfo") -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(TUTORIAL)
    obj["metadata"] = {"name": name, "namespace": ns}
    return obj


def full_v1beta1(ns: str, name: str = "full") -> dict[str, Any]:
    """A v1beta1 Canary using (nearly) every field Flagger documents."""
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "provider": "istio",
            "metricsServer": "http://prometheus.istio-system:9090",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "autoscalerRef": {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "name": "podinfo",
                "primaryScalerReplicas": {"minReplicas": 2, "maxReplicas": 4},
            },
            "progressDeadlineSeconds": 120,
            "skipAnalysis": False,
            "revertOnDeletion": True,
            "suspend": False,
            "service": {
                "name": "podinfo-svc",
                "port": 80,
                "targetPort": "http",
                "portName": "http-podinfo",
                "appProtocol": "http",
                "portDiscovery": True,
                "headless": False,
                "timeout": "15s",
                "trafficDistribution": "PreferClose",
                "gateways": ["istio-system/public-gateway"],
                "hosts": ["app.example.com"],
                "trafficPolicy": {
                    "tls": {"mode": "ISTIO_MUTUAL"},
                    "loadBalancer": {"consistentHash": {"httpCookie": {"name": "u", "ttl": "0s"}}},
                    "outlierDetection": {"consecutive5xxErrors": 3, "interval": "10s"},
                },
                "match": [{"uri": {"prefix": "/api"}, "headers": {"x-env": {"exact": "prod"}}}],
                "rewrite": {"uri": "/", "authority": "podinfo"},
                "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "gateway-error,connect-failure"},
                "headers": {
                    "request": {"add": {"x-some-header": "value"}, "remove": ["x-drop"]},
                    "response": {"set": {"x-served-by": "canary"}},
                },
                "corsPolicy": {
                    "allowOrigins": [{"exact": "https://example.com"}],
                    "allowMethods": ["GET"],
                    "allowHeaders": ["x-a"],
                    "exposeHeaders": ["x-b"],
                    "maxAge": "24h",
                    "allowCredentials": False,
                },
                "apex": {"labels": {"test": "labels-test"}, "annotations": {"test": "annotations-test"}},
                "primary": {"labels": {"tier": "primary"}},
                "canary": {"annotations": {"tier": "canary"}},
                "unmanagedMetadata": {"annotations": ["kept.example.com/a"], "labels": ["kept"]},
            },
            "analysis": {
                "interval": "1m",
                "threshold": 5,
                "maxWeight": 60,
                "stepWeights": [5, 10, 30, 60],
                "stepWeightPromotion": 50,
                "mirror": True,
                "mirrorWeight": 20,
                "primaryReadyThreshold": 80,
                "canaryReadyThreshold": 90,
                "sessionAffinity": {
                    "cookieName": "canary-cookie",
                    "primaryCookieName": "primary-cookie",
                    "maxAge": 3600,
                    "sameSite": "Lax",
                    "secure": True,
                    "path": "/",
                },
                "metrics": [
                    {"name": "request-success-rate", "interval": "1m", "thresholdRange": {"min": 99}},
                    {"name": "request-duration", "interval": "30s", "thresholdRange": {"max": 500}},
                    {
                        "name": "latency",
                        "templateRef": {"name": "latency", "namespace": "istio-system"},
                        "templateVariables": {"reporter": "destination"},
                        "thresholdRange": {"min": 0.5, "max": 500},
                    },
                    {"name": "errors", "query": "sum(rate(x[1m]))", "threshold": 1.5},
                ],
                "webhooks": [
                    {"name": "gate", "type": "confirm-rollout", "url": "http://lt.test/gate/check"},
                    {
                        "name": "pre",
                        "type": "pre-rollout",
                        "url": "http://lt.test/",
                        "timeout": "30s",
                        "retries": 2,
                        "metadata": {"type": "bash", "cmd": "curl -s http://podinfo-canary"},
                    },
                    {
                        "name": "load",
                        "url": "http://lt.test/",
                        "timeout": "5s",
                        "disableTLS": True,
                        "muteAlert": True,
                        "metadata": {"cmd": "hey -z 1m http://podinfo-canary"},
                    },
                    {
                        "name": "traffic",
                        "type": "confirm-traffic-increase",
                        "url": "http://lt.test/gate/approve",
                    },
                    {"name": "promo", "type": "confirm-promotion", "url": "http://lt.test/gate/approve"},
                    {"name": "rb", "type": "rollback", "url": "http://lt.test/rollback/check"},
                    {"name": "post", "type": "post-rollout", "url": "http://lt.test/"},
                    {"name": "ev", "type": "event", "url": "http://events.test/"},
                ],
                "alerts": [
                    {
                        "name": "on-call",
                        "severity": "error",
                        "providerRef": {"name": "slack", "namespace": "flagger"},
                    }
                ],
            },
        },
    }


@pytest.fixture
def k(bed: Any) -> Kubectl:
    return Kubectl(str(bed.kubeconfig))


def test_generated_crds_are_up_to_date() -> None:
    p = subprocess.run(
        [sys.executable, str(ROOT / "manifests" / "crd" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.returncode == 0, p.stdout + p.stderr


def test_tutorial_v1alpha3_canary_is_accepted_and_listed(k: Kubectl, namespace: str) -> None:
    obj = tutorial(namespace)
    p = k.apply(obj)
    assert p.returncode == 0, p.stderr
    stored = k.get_json("canary", "-n", namespace, "podinfo")
    assert stored["spec"] == obj["spec"]  # nothing pruned: canaryAnalysis, legacy metric names, webhooks
    header, row = k.ok("get", "canaries", "-n", namespace).splitlines()
    assert header.split() == ["NAME", "STATUS", "WEIGHT", "LASTTRANSITIONTIME"]
    assert row.split() == ["podinfo"]
    served = k.get_json("canaries.v1alpha3.flagger.app", "-n", namespace, "podinfo")
    assert served["apiVersion"] == "flagger.app/v1alpha3" and served["spec"] == obj["spec"]
    assert "canary.flagger.app/podinfo" in k.ok("get", "all", "-n", namespace, "-o", "name")  # category all
    wide = k.ok("get", "canaries.v1alpha3.flagger.app", "-n", namespace, "-o", "wide").splitlines()
    cols = wide[0].split()
    assert cols == [
        "NAME",
        "STATUS",
        "WEIGHT",
        "SUSPENDED",
        "FAILEDCHECKS",
        "INTERVAL",
        "MIRROR",
        "STEPWEIGHT",
        "STEPWEIGHTS",
        "MAXWEIGHT",
        "LASTTRANSITIONTIME",
    ]
    assert wide[1].split() == ["podinfo", "30s", "5", "50"]  # v1alpha3 columns read canaryAnalysis


def test_full_v1beta1_canary_is_kept_as_written(k: Kubectl, namespace: str) -> None:
    obj = full_v1beta1(namespace)
    p = k.apply(obj)
    assert p.returncode == 0, p.stderr
    assert "unknown field" not in p.stderr, p.stderr
    stored = k.get_json("canary", "-n", namespace, "full")
    assert stored["spec"] == obj["spec"]
    wide = k.ok("get", "canary", "-n", namespace, "full", "-o", "wide").splitlines()
    assert wide[1].split() == ["full", "false", "1m", "true", "[5,10,30,60]", "60"]


def test_unknown_fields_are_refused_by_kubectl_and_pruned_otherwise(k: Kubectl, namespace: str) -> None:
    obj = tutorial(namespace, "pruned")
    obj["spec"]["canaryAnalysis"]["stepWieght"] = 5  # a typo
    obj["spec"]["bogus"] = {"x": 1}
    p = k.apply(obj)  # kubectl's default server-side field validation is strict
    assert p.returncode != 0
    assert 'unknown field "spec.bogus", unknown field "spec.canaryAnalysis.stepWieght"' in p.stderr
    p = k.run("apply", "--validate=warn", "-f", "-", stdin=yaml.safe_dump(obj))  # as other clients do
    assert p.returncode == 0, p.stderr
    assert 'unknown field "spec.bogus"' in p.stderr
    stored = k.get_json("canary", "-n", namespace, "pruned")["spec"]
    assert "bogus" not in stored and "stepWieght" not in stored["canaryAnalysis"]


def _set(obj: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for p in parents:
        obj = obj[p]
    if value is _DELETE:
        del obj[last]
    else:
        obj[last] = value


_DELETE = object()

BAD = [
    (
        "maxWeight 150",
        "spec.canaryAnalysis.maxWeight",
        150,
        "spec.canaryAnalysis.maxWeight: Invalid value: 150: spec.canaryAnalysis.maxWeight in body should be "
        "less than or equal to 100",
    ),
    (
        "no step",
        "spec.canaryAnalysis.stepWeight",
        _DELETE,
        "exactly one of canaryAnalysis.stepWeight (progressive traffic), canaryAnalysis.stepWeights "
        "(a list of "
        "weights) or canaryAnalysis.iterations (Blue/Green, A/B) must be set",
    ),
    ("two kinds of step", "spec.canaryAnalysis.iterations", 5, "exactly one of canaryAnalysis.stepWeight"),
    ("no targetRef", "spec.targetRef", _DELETE, "spec.targetRef: Required value"),
    ("no service port", "spec.service.port", _DELETE, "spec.service.port: Required value"),
    ("no interval", "spec.canaryAnalysis.interval", _DELETE, "spec.canaryAnalysis.interval: Required value"),
    ("bad interval", "spec.canaryAnalysis.interval", "30 seconds", "should match '^([0-9]+(ms|s|m|h))+$'"),
    ("interval below 1s", "spec.canaryAnalysis.interval", "1ms",
     'spec.canaryAnalysis.interval: Invalid value: "1ms": must be a duration between 1s and 24h'),
    ("interval above 24h", "spec.canaryAnalysis.interval", "25h", "must be a duration between 1s and 24h"),
    ("progress deadline above 24h", "spec.progressDeadlineSeconds", 86401,
     "spec.progressDeadlineSeconds: Invalid value: 86401"),
    ("stepWeight 101", "spec.canaryAnalysis.stepWeight", 101, "should be less than or equal to 100"),
    ("negative stepWeight", "spec.canaryAnalysis.stepWeight", -5, "should be greater than or equal to 0"),
    ("bad target kind", "spec.targetRef.kind", "StatefulSet", 'Unsupported value: "StatefulSet"'),
    (
        "bad hook type",
        "spec.canaryAnalysis.webhooks",
        [{"name": "x", "url": "http://x", "type": "pre"}],
        'spec.canaryAnalysis.webhooks[0].type: Unsupported value: "pre"',
    ),
    (
        "hook without url",
        "spec.canaryAnalysis.webhooks",
        [{"name": "x"}],
        "spec.canaryAnalysis.webhooks[0].url: Required value",
    ),
    (
        "bad metric range",
        "spec.canaryAnalysis.metrics",
        [{"name": "m", "thresholdRange": {"min": 5, "max": 1}}],
        "thresholdRange.min must not be greater than thresholdRange.max",
    ),
]


@pytest.mark.parametrize(("case", "path", "value", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_canary_is_refused_with_a_clear_message(
    k: Kubectl, namespace: str, case: str, path: str, value: Any, message: str
) -> None:
    obj = tutorial(namespace, "bad")
    _set(obj, path, value if value is _DELETE else copy.deepcopy(value))
    p = k.apply(obj)
    assert p.returncode != 0, f"{case}: accepted"
    assert 'The Canary "bad" is invalid' in p.stderr
    assert message in p.stderr, p.stderr
    assert k.run("get", "canary", "-n", namespace, "bad").returncode != 0  # nothing stored


def _with_duration(ns: str, name: str, version: str, where: str, text: str) -> dict[str, Any]:
    obj = tutorial(ns, name)
    if version == "v1beta1":
        obj["apiVersion"] = "flagger.app/v1beta1"
        obj["spec"]["analysis"] = obj["spec"].pop("canaryAnalysis")
    analysis = obj["spec"]["analysis" if version == "v1beta1" else "canaryAnalysis"]
    if where == "interval":
        analysis["interval"] = text
    else:
        analysis["metrics"][0]["interval"] = text
    return obj


@pytest.mark.parametrize("version", ["v1beta1", "v1alpha3"])
def test_crd_and_parser_agree_on_durations(k: Kubectl, namespace: str, version: str) -> None:
    """The table of e2e/duration_cases.py (also in tests/model/test_durations.py), through the API server
    (a server-side dry run of one object per case and field) and through canaryd's parser: both accept
    and refuse the same texts."""
    objs, expected = [], {}
    for i, (text, accepted) in enumerate(CASES):
        for where in ("interval", "metric"):
            name = f"d{i}-{where}"
            obj = _with_duration(namespace, name, version, where, text)
            assert isinstance(parse_canary(obj), CanarySpec) == accepted, (text, where, parse_canary(obj))
            objs.append(obj)
            expected[name] = accepted
    p = k.run("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump_all(objs), timeout=120)
    stored = {n for n in expected if f"canary.flagger.app/{n} created (server dry run)" in p.stdout}
    refused = {n for n in expected if f'Canary.flagger.app "{n}" is invalid' in p.stderr}
    assert stored.isdisjoint(refused) and stored | refused == set(expected), (p.stdout, p.stderr)
    disagree = {CASES[int(n[1:].split("-")[0])][0]: n for n in expected if (n in stored) != expected[n]}
    assert not disagree, f"CRD and parser disagree on {disagree}"


@pytest.mark.parametrize(
    ("case", "mutate", "message"),
    [
        (
            "stepWeights not increasing",
            lambda a: a.update(stepWeights=[10, 5, 20]),
            "spec.analysis.stepWeights: Invalid value: stepWeights must be strictly increasing",
        ),
        (
            "stepWeights repeated",
            lambda a: a.update(stepWeights=[5, 10, 10]),
            "stepWeights must be strictly increasing",
        ),
        ("stepWeights above 100", lambda a: a.update(stepWeights=[50, 150]), "less than or equal to 100"),
        (
            "same cookie names",
            lambda a: a["sessionAffinity"].update(primaryCookieName="canary-cookie"),
            "can't use the same cookie name for both primary and cookie name; "
            "please update them to be different",
        ),
    ],
)
def test_bad_v1beta1_analysis_is_refused(
    k: Kubectl, namespace: str, case: str, mutate: Any, message: str
) -> None:
    obj = full_v1beta1(namespace, "bad")
    mutate(obj["spec"]["analysis"])
    p = k.apply(obj)
    assert p.returncode != 0, f"{case}: accepted"
    assert message in p.stderr, p.stderr


def test_analysis_and_canary_analysis_together_refused(k: Kubectl, namespace: str) -> None:
    obj = tutorial(namespace, "both")
    obj["spec"]["analysis"] = copy.deepcopy(obj["spec"]["canaryAnalysis"])
    p = k.apply(obj)
    assert p.returncode != 0
    assert "set either analysis or the deprecated canaryAnalysis, not both" in p.stderr


def test_canary_without_analysis_is_accepted(k: Kubectl, namespace: str) -> None:
    obj = tutorial(namespace, "noanalysis")
    del obj["spec"]["canaryAnalysis"]
    obj["spec"]["skipAnalysis"] = True
    p = k.apply(obj)
    assert p.returncode == 0, p.stderr


STATUS: dict[str, Any] = {
    "phase": "Succeeded",
    "canaryWeight": 0,
    "failedChecks": 1,
    "iterations": 0,
    "lastAppliedSpec": "cd1:abc",
    "lastPromotedSpec": "cd1:abc",
    "trackedConfigs": {
        "configmap/podinfo-config": "0123456789abcdef",
        "secret/podinfo-secret": "fedcba9876543210",
    },
    "lastTransitionTime": "2026-07-25T10:44:21Z",
    "conditions": [
        {
            "type": "Promoted",
            "status": "True",
            "reason": "Succeeded",
            "message": "Canary analysis completed successfully, promotion finished.",
            "lastUpdateTime": "2026-07-25T10:44:21Z",
            "lastTransitionTime": "2026-07-25T10:44:21Z",
        },
        {
            "type": "Valid",
            "status": "False",
            "reason": "InvalidSpec",
            "message": "x",
            "lastUpdateTime": "2026-07-25T10:44:21Z",
            "lastTransitionTime": "2026-07-25T10:44:21Z",
        },
    ],
    "nextStepAt": "2026-07-25T10:45:21.123Z",
    "waitingSince": "2026-07-25T10:44:00.500Z",
    "checks": [
        {
            "name": "request-success-rate",
            "verdict": "fail",
            "value": 69.17,
            "threshold": ">= 99%",
            "message": "success rate 69.17% < 99%",
        },
        {
            "name": "request-duration",
            "verdict": "nodata",
            "value": None,
            "threshold": "<= 500ms",
            "message": "Halt advancement no values found for istio metric request-duration probably "
            "podinfo.test "
            "is not receiving traffic",
        },
    ],
    "message": "Halt podinfo.test advancement success rate 69.17% < 99%",
    "observedGeneration": 1,
    "mirrored": True,
    "sessionAffinityCookie": "c=abcdefghij",
    "primarySessionAffinityCookie": "p=abcdefghij",
    "previousSessionAffinityCookie": "c=zyxwvutsrq",
}


def test_status_subresource_takes_everything_canaryd_writes(k: Kubectl, namespace: str) -> None:
    assert k.apply(tutorial(namespace)).returncode == 0
    # before the condition exists, kubectl wait times out (so the success below means something)
    p = k.run("wait", "-n", namespace, "canary/podinfo", "--for=condition=promoted", "--timeout=1s")
    assert p.returncode != 0
    # status is a subresource: a write of the main resource does not change it
    k.ok("patch", "-n", namespace, "canary", "podinfo", "--type=merge", "-p", '{"status":{"phase":"Failed"}}')
    assert "status" not in k.get_json("canary", "-n", namespace, "podinfo")
    p = k.run(
        "patch",
        "-n",
        namespace,
        "canary",
        "podinfo",
        "--subresource=status",
        "--type=merge",
        "-p",
        yaml.safe_dump({"status": STATUS}),
    )
    assert p.returncode == 0, p.stderr
    assert "unknown field" not in p.stderr, p.stderr  # every field canaryd writes is in the schema
    stored = k.get_json("canary", "-n", namespace, "podinfo")["status"]
    expected = copy.deepcopy(STATUS)
    del expected["checks"][1]["value"]  # a JSON merge patch null removes the key
    assert stored == expected
    header, row = k.ok("get", "canaries", "-n", namespace).splitlines()
    assert header.split() == ["NAME", "STATUS", "WEIGHT", "LASTTRANSITIONTIME"]
    assert row.split() == ["podinfo", "Succeeded", "0", "2026-07-25T10:44:21Z"]
    k.ok("wait", "-n", namespace, "canary/podinfo", "--for=condition=promoted", "--timeout=10s")


def test_status_with_wrong_types_is_refused(k: Kubectl, namespace: str) -> None:
    assert k.apply(tutorial(namespace)).returncode == 0
    p = k.run(
        "patch",
        "-n",
        namespace,
        "canary",
        "podinfo",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"phase":"Sideways","canaryWeight":"ten"}}',
    )
    assert p.returncode != 0
    assert 'status.phase: Unsupported value: "Sideways"' in p.stderr
    assert "status.canaryWeight: Invalid value" in p.stderr


def test_metric_template_and_alert_provider(k: Kubectl, namespace: str) -> None:
    mt: dict[str, Any] = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": "latency", "namespace": namespace},
        "spec": {
            "provider": {
                "type": "prometheus",
                "address": "http://prometheus.istio-system:9090",
                "headers": {"X-Scope-OrgID": ["team-a"]},
                "secretRef": {"name": "prom-auth"},
                "insecureSkipVerify": True,
            },
            "query": "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{"
            'reporter="{{ variables.reporter }}",destination_workload_namespace="{{ namespace }}",'
            'destination_workload=~"{{ target }}"}[{{ interval }}])) by (le))',
        },
    }
    ap: dict[str, Any] = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "AlertProvider",
        "metadata": {"name": "on-call", "namespace": namespace},
        "spec": {
            "type": "slack",
            "channel": "general",
            "username": "canaryd",
            "secretRef": {"name": "slack-url"},
            "proxy": "http://proxy.internal:3128",
        },
    }
    for obj in (mt, ap):
        p = k.apply(obj)
        assert p.returncode == 0, p.stderr
        assert "unknown field" not in p.stderr
    assert k.get_json("metrictemplate", "-n", namespace, "latency")["spec"] == mt["spec"]
    assert k.get_json("alertprovider", "-n", namespace, "on-call")["spec"] == ap["spec"]
    assert k.ok("get", "metrictemplates", "-n", namespace).splitlines()[0].split() == [
        "NAME",
        "PROVIDER",
        "AGE",
    ]
    row = k.ok("get", "alertproviders", "-n", namespace).splitlines()
    assert row[0].split() == ["NAME", "TYPE", "AGE"] and row[1].split()[:2] == ["on-call", "slack"]

    bad_ap = copy.deepcopy(ap)
    bad_ap["metadata"]["name"] = "nowhere"
    del bad_ap["spec"]["secretRef"]
    p = k.apply(bad_ap)
    assert p.returncode != 0 and "one of address or secretRef must be set" in p.stderr
    bad_mt = copy.deepcopy(mt)
    bad_mt["metadata"]["name"] = "unknown-provider"
    bad_mt["spec"]["provider"]["type"] = "graphana"
    p = k.apply(bad_mt)
    assert p.returncode != 0 and 'spec.provider.type: Unsupported value: "graphana"' in p.stderr
