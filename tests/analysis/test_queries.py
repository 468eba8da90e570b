"""The exact PromQL strings of the builtin checks and the query template language."""

import pytest

from canaryd.analysis.builtin import builtin_kind, builtin_query
from canaryd.analysis.query_template import RenderError, TemplateVars, collapse_whitespace, render

from .specs import canary, metric

SUCCESS_RATE_PODINFO_TEST_1M = (
    ' sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="test",'
    ' destination_workload=~"podinfo", response_code!~"5.*" }[1m] ) ) / sum( rate( istio_requests_total{'
    ' reporter="destination", destination_workload_namespace="test", destination_workload=~"podinfo" }[1m]'
    ' ) ) * 100'
)
DURATION_PODINFO_TEST_1M = (
    ' histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket{'
    ' reporter="destination", destination_workload_namespace="test", destination_workload=~"podinfo" }[1m]'
    ' ) ) by (le) )'
)


def test_success_rate_query_is_flaggers_string() -> None:
    m = metric("request-success-rate", lo=99)
    assert builtin_query("request-success-rate", canary(m), m) == SUCCESS_RATE_PODINFO_TEST_1M


def test_duration_query_is_flaggers_string() -> None:
    m = metric("request-duration", hi=500)
    assert builtin_query("request-duration", canary(m), m) == DURATION_PODINFO_TEST_1M


def test_query_uses_target_namespace_and_interval() -> None:
    m = metric("request-duration", interval="30s")
    q = builtin_query("request-duration", canary(m, name="c1", namespace="prod", target="web"), m)
    assert 'destination_workload_namespace="prod"' in q
    assert 'destination_workload=~"web"' in q
    assert "[30s]" in q
    assert "c1" not in q  # the canary's own name is not part of the builtin queries


@pytest.mark.parametrize(("name", "kind"), [
    ("request-success-rate", "request-success-rate"),
    ("request-duration", "request-duration"),
    ("istio_requests_total", "request-success-rate"),
    ("istio_request_duration_seconds_bucket", "request-duration"),
    ("latency", None),
    ("Request-Success-Rate", None),
])
def test_builtin_kind_by_name_and_legacy_alias(name: str, kind: str | None) -> None:
    assert builtin_kind(metric(name)) == kind


VARS = TemplateVars(name="podinfo", namespace="test", target="podinfo-target", service="podinfo-svc",
                    interval="30s", variables={"reporter": "destination"})


@pytest.mark.parametrize(("template", "text"), [
    ("{{ name }}/{{namespace}}/{{  target  }}/{{ service }}/{{ interval }}",
     "podinfo/test/podinfo-target/podinfo-svc/30s"),
    ('x{reporter="{{ variables.reporter }}"}', 'x{reporter="destination"}'),
    ("a  {{- name -}}  b", "apodinfob"),
    ("{{ ingress }} {{ route }}", "podinfo-target podinfo-target"),
    ("no actions at all", "no actions at all"),
])
def test_render(template: str, text: str) -> None:
    assert render(template, VARS) == text


@pytest.mark.parametrize(("template", "error"), [
    ("{{ variables.missing }}", 'map has no entry for key "missing"'),
    ("{{ pods }}", 'function "pods" not defined'),
])
def test_render_errors(template: str, error: str) -> None:
    with pytest.raises(RenderError, match=error):
        render(template, VARS)


def test_collapse_whitespace_keeps_single_leading_space() -> None:
    assert collapse_whitespace("\n\t  a(\n  b )\n") == " a( b ) "
