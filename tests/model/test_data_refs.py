"""Which objects' data a Canary's pass reads (model/data_refs.py): a plain table over cached objects."""

from __future__ import annotations

from typing import Any

import pytest

from canaryd.model.data_refs import data_needed
from canaryd.model.parse import parse_canary
from canaryd.model.spec import CanarySpec


def deployment(*containers: dict[str, Any], volumes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    pod: dict[str, Any] = {"containers": list(containers)}
    if volumes:
        pod["volumes"] = volumes
    return {"metadata": {"name": "app", "namespace": "ns"}, "spec": {"template": {"spec": pod}}}


def spec(metrics: list[dict[str, Any]] | None = None, **extra: Any) -> CanarySpec:
    parsed = parse_canary({"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
                           "metadata": {"name": "app", "namespace": "ns", "uid": "u", "generation": 1},
                           "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                                  "name": "app"},
                                    "service": {"port": 80}, **extra,
                                    "analysis": {"interval": "10s", "threshold": 1, "stepWeight": 10,
                                                 "metrics": metrics or []}}})
    assert isinstance(parsed, CanarySpec), parsed
    return parsed


def template(secret: str | None) -> dict[str, Any]:
    provider: dict[str, Any] = {"type": "datadog", "address": "https://api.datadoghq.com"}
    if secret:
        provider["secretRef"] = {"name": secret}
    return {"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
            "metadata": {"name": "dd", "namespace": "shared"}, "spec": {"provider": provider, "query": "q"}}


ENV_FROM = {"name": "c", "image": "i", "envFrom": [{"secretRef": {"name": "creds"}},
                                                   {"configMapRef": {"name": "settings"}}]}
VOLUME = [{"name": "v", "secret": {"secretName": "tls"}}]
DD = [{"name": "errors", "templateRef": {"name": "dd", "namespace": "shared"}, "thresholdRange": {"max": 1}}]

CASES = [
    ("no target in the cache", None, None, {}, True, ()),
    ("a container with no refs", deployment({"name": "c", "image": "i"}), None, {}, True, ()),
    ("envFrom: each object and its primary copy", deployment(ENV_FROM), None, {}, True,
     (("ConfigMap", "ns", "settings"), ("ConfigMap", "ns", "settings-primary"),
      ("Secret", "ns", "creds"), ("Secret", "ns", "creds-primary"))),
    ("a volume", deployment({"name": "c", "image": "i"}, volumes=VOLUME), None, {}, True,
     (("Secret", "ns", "tls"), ("Secret", "ns", "tls-primary"))),
    ("tracking off: none of the pod's", deployment(ENV_FROM), None, {}, False, ()),
    ("a template's secretRef, in the template's namespace", None, template("dd-keys"), {"metrics": DD}, True,
     (("Secret", "shared", "dd-keys"),)),
    ("a template without secretRef", None, template(None), {"metrics": DD}, True, ()),
    ("the template not in the cache", None, None, {"metrics": DD}, True, ()),
    ("skipAnalysis: no template is read", None, template("dd-keys"), {"metrics": DD, "skipAnalysis": True},
     True, ()),
    ("the pod's and the template's together", deployment({"name": "c", "image": "i"}, volumes=VOLUME),
     template("dd-keys"), {"metrics": DD}, False, (("Secret", "shared", "dd-keys"),)),
]


@pytest.mark.parametrize(("case", "target", "tmpl", "extra", "tracking", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_data_needed(case: str, target: dict[str, Any] | None, tmpl: dict[str, Any] | None,
                     extra: dict[str, Any], tracking: bool,
                     expected: tuple[tuple[str, str, str], ...]) -> None:
    extra = dict(extra)
    metrics = extra.pop("metrics", None)
    s = spec(metrics, **extra)
    found = data_needed(s, lambda ns, name: target if (ns, name) == ("ns", "app") else None,
                        lambda ns, name: tmpl if (ns, name) == ("shared", "dd") else None,
                        config_tracking=tracking)
    assert tuple(sorted(found)) == tuple(sorted(expected)), case
