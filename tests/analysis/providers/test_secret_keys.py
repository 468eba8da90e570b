"""A template whose provider needs secret keys it does not have is refused before a run (``Valid=False``
on every Canary that uses it, naming the key), from the watch cache alone: Flagger's key names."""

from __future__ import annotations

from typing import Any

import pytest

from canaryd.model.template_refs import template_problem

from ..specs import canary, metric

DD = ("datadog_api_key", "datadog_application_key")


def cache(provider: dict[str, Any], secret: dict[str, Any] | None) -> tuple[Any, Any]:
    tpl = {"spec": {"provider": provider, "query": "q"}}
    return (lambda ns, name: tpl if (ns, name) == ("test", "t") else None,
            lambda ns, name: secret if (ns, name) == ("test", "keys") else None)


@pytest.mark.parametrize(("provider", "secret", "problem"), [
    ({"type": "datadog"}, None, "metric m: MetricTemplate test/t (provider datadog) has no "
     "spec.provider.secretRef; its secret must contain datadog_api_key, datadog_application_key"),
    ({"type": "datadog", "secretRef": {"name": "keys"}}, {"data": {"datadog_api_key": "eA=="}},
     "metric m: MetricTemplate test/t (provider datadog): secret keys does not contain "
     "datadog_application_key"),
    ({"type": "datadog", "secretRef": {"name": "keys"}}, {"data": {k: "eA==" for k in DD}}, None),
    ({"type": "datadog", "secretRef": {"name": "keys"}},  # stringData counts too
     {"data": {DD[0]: "eA=="}, "stringData": {DD[1]: "x"}}, None),
    ({"type": "datadog", "secretRef": {"name": "keys"}}, None, None),  # not cached (yet): the check says
    ({"type": "newrelic", "secretRef": {"name": "keys"}}, {"data": {"newrelic_query_key": "eA=="}},
     "metric m: MetricTemplate test/t (provider newrelic): secret keys does not contain "
     "newrelic_account_id"),
    ({"type": "dynatrace", "address": "https://x.live.dynatrace.com", "secretRef": {"name": "keys"}},
     {"data": {"token": "eA=="}},
     "metric m: MetricTemplate test/t (provider dynatrace): secret keys does not contain dynatrace_token"),
    ({"type": "stackdriver"}, None, "metric m: MetricTemplate test/t (provider stackdriver) has no "
     "spec.provider.secretRef; its secret must contain project"),
    ({"type": "stackdriver", "secretRef": {"name": "keys"}}, {"data": {"project": "eA=="}}, None),
    ({"type": "splunk", "address": "https://api.us1.signalfx.com", "secretRef": {"name": "keys"}},
     {"data": {"token": "eA=="}},
     "metric m: MetricTemplate test/t (provider splunk): secret keys does not contain sf_token_key"),
    ({"type": "splunk", "address": "https://api.us1.signalfx.com"}, None, "metric m: MetricTemplate test/t "
     "(provider splunk) has no spec.provider.secretRef; its secret must contain sf_token_key"),
    ({"type": "cloudwatch", "region": "eu-west-1"}, None, None),  # no secretRef: the AWS chain
    ({"type": "prometheus", "address": "http://prom"}, None, None),
])
def test_missing_provider_secret_keys_are_refused_up_front(provider: dict[str, Any],
                                                           secret: dict[str, Any] | None,
                                                           problem: str | None) -> None:
    templates, secrets = cache(provider, secret)
    assert template_problem(canary(metric("m", template="t", hi=1)), templates, secrets) == problem
