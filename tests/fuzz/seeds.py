"""Valid objects the fuzz tests start from: the shipped example, the Canaries, MetricTemplates and
AlertProviders of the e2e specs and unit tests, and statuses canaryd writes, so mutations land close to
real input and reach deep into parsing and the decision core."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

import e2e.test_crds as crds
from e2e.canaries import canary as e2e_canary

ROOT = Path(__file__).resolve().parents[2]
JSON = dict[str, Any]


def _example() -> JSON:
    obj: JSON = yaml.safe_load((ROOT / "manifests" / "examples" / "podinfo-canary.yaml").read_text())
    return obj


def _with_status(obj: JSON, **changes: Any) -> JSON:
    out = copy.deepcopy(obj)
    out["status"] = {**copy.deepcopy(crds.STATUS), **changes}
    return out


def _feature_rich() -> JSON:
    """Every analysis feature canaryd reads: templates (same and other namespace), hooks, alerts, A/B."""
    obj = e2e_canary(
        "test",
        webhooks=[
            {"name": "gate", "type": "confirm-rollout", "url": "http://lt.test/gate/approve"},
            {"name": "pre", "type": "pre-rollout", "url": "http://lt.test/", "timeout": "15s",
             "metadata": {"type": "bash", "cmd": "curl -s http://podinfo-canary.test:9898/"}},
            {"name": "ev", "type": "event", "url": "http://events.test/"},
            {"name": "rb", "type": "rollback", "url": "http://lt.test/rollback/check", "retries": 2},
        ],
        alerts=[{"name": "on-call", "severity": "error", "providerRef": {"name": "on-call"}},
                {"name": "shared", "providerRef": {"name": "chat", "namespace": "ops"}}],
        metrics=[
            {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"},
            {"name": "latency", "templateRef": {"name": "latency", "namespace": "istio-system"},
             "templateVariables": {"reporter": "destination"}, "thresholdRange": {"max": 500},
             "interval": "30s"},
            {"name": "errors", "query": "sum(rate(x[1m]))", "threshold": 1},
        ],
        sessionAffinity={"cookieName": "canary", "maxAge": 60},
    )
    obj["spec"]["revertOnDeletion"] = True
    return obj


def _ab() -> JSON:
    obj = e2e_canary("test", stepWeight=None, maxWeight=None, iterations=5,
                     match=[{"headers": {"x-canary": {"exact": "insider"}}}], mirror=True, mirrorWeight=50)
    del obj["spec"]["analysis"]["stepWeight"], obj["spec"]["analysis"]["maxWeight"]
    return obj


def canaries() -> list[JSON]:
    tutorial = crds.tutorial("test")
    full = crds.full_v1beta1("test")
    plain = e2e_canary("test")
    return [
        _example(), tutorial, full, plain, _feature_rich(), _ab(),
        _with_status(plain), _with_status(tutorial, phase="Progressing", canaryWeight=20, failedChecks=2),
        _with_status(full, phase="Promoting", canaryWeight=50),
        _with_status(_ab(), phase="Progressing", iterations=3, canaryWeight=0),
        _with_status(_feature_rich(), phase="WaitingPromotion", canaryWeight=50, lastAppliedSpec="cd1:new"),
    ]


def metric_templates() -> list[JSON]:
    latency = {
        "apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
        "metadata": {"name": "latency", "namespace": "istio-system"},
        "spec": {
            "provider": {"type": "prometheus", "address": "http://prometheus.istio-system:9090",
                         "headers": {"X-Scope-OrgID": ["team-a"]}, "secretRef": {"name": "prom-auth"},
                         "insecureSkipVerify": True},
            "query": 'histogram_quantile(0.99, sum(rate(x{reporter="{{ variables.reporter }}",'
                     'ns="{{ namespace }}",w=~"{{ target }}"}[{{ interval }}])) by (le))',
        },
    }
    bare = {"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
            "metadata": {"name": "bare", "namespace": "test"},
            "spec": {"provider": {"type": "prometheus"}, "query": "up{svc=\"{{ service }}\"} {{- name -}}"}}
    return [latency, bare]


def alert_providers() -> list[JSON]:
    meta = {"name": "on-call", "namespace": "test"}
    return [
        {"apiVersion": "flagger.app/v1beta1", "kind": "AlertProvider", "metadata": meta,
         "spec": {"type": "slack", "channel": "general", "username": "canaryd",
                  "secretRef": {"name": "slack-url"}, "proxy": "http://proxy.internal:3128"}},
        {"apiVersion": "flagger.app/v1beta1", "kind": "AlertProvider", "metadata": meta,
         "spec": {"type": "msteams", "address": "https://teams.example/hook"}},
    ]
