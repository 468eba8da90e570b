"""References to another namespace: refused with Flagger's texts under --no-cross-namespace-refs; allowed
otherwise, with the values put into another namespace's MetricTemplate restricted."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from canaryd.model.parse import parse_canary
from canaryd.model.spec import CanarySpec, SpecError

from .test_parse import MINIMAL  # namespace "ns"


def canary(
    metrics: list[dict[str, Any]] | None = None, alerts: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    obj = copy.deepcopy(MINIMAL)
    if metrics is not None:
        obj["spec"]["analysis"]["metrics"] = metrics
    if alerts is not None:
        obj["spec"]["analysis"]["alerts"] = alerts
    return obj


def tmetric(ns: str | None, **variables: Any) -> dict[str, Any]:
    ref = {"name": "latency"} if ns is None else {"name": "latency", "namespace": ns}
    return {"name": "lat", "templateRef": ref, "templateVariables": variables, "thresholdRange": {"max": 1}}


def alert(ns: str | None) -> dict[str, Any]:
    ref = {"name": "on-call"} if ns is None else {"name": "on-call", "namespace": ns}
    return {"name": "a", "providerRef": ref}


CROSS = [
    (canary(metrics=[tmetric("monitoring")]),
     "can't access metric template latency.monitoring, cross-namespace references are blocked"),
    (canary(alerts=[alert("monitoring")]),
     "can't access alert provider on-call.monitoring, cross-namespace references are blocked"),
]
SAME = [canary(metrics=[tmetric(None)]), canary(metrics=[tmetric("ns")]), canary(alerts=[alert(None)]),
        canary(alerts=[alert("ns")])]


@pytest.mark.parametrize(("obj", "message"), CROSS)
def test_cross_namespace_refs_blocked_with_flaggers_text(obj: dict[str, Any], message: str) -> None:
    err = parse_canary(obj, cross_namespace_refs=False)
    assert err == SpecError(message)
    assert isinstance(parse_canary(obj), CanarySpec)  # Flagger's default: allowed


@pytest.mark.parametrize("obj", SAME)
def test_same_namespace_refs_are_not_cross_namespace(obj: dict[str, Any]) -> None:
    assert isinstance(parse_canary(obj, cross_namespace_refs=False), CanarySpec)


UNSAFE = ['destination"} or vector(1) #', "a b", "x{y}", "line\nbreak", "ünïcode", "a|b", "1;2", "$(x)"]
SAFE = ["destination", "", "ns/app-1", "http://x:9090/a_b.c", "A-Z_0.9"]


@pytest.mark.parametrize("value", UNSAFE)
def test_unsafe_variables_of_another_namespaces_template_are_refused(value: str) -> None:
    err = parse_canary(canary(metrics=[tmetric("monitoring", reporter="destination", bad=value)]))
    assert isinstance(err, SpecError), err
    assert err.message.startswith("spec.analysis.metrics[0].templateVariables.bad "), err.message
    assert "MetricTemplate latency.monitoring is in another namespace" in err.message
    assert "^[A-Za-z0-9_.:/-]*$" in err.message


@pytest.mark.parametrize("value", SAFE)
def test_safe_variables_of_another_namespaces_template_pass(value: str) -> None:
    spec = parse_canary(canary(metrics=[tmetric("monitoring", v=value)]))
    assert isinstance(spec, CanarySpec), spec
    assert spec.analysis.metrics[0].template_variables == {"v": value}


@pytest.mark.parametrize("value", UNSAFE)
def test_variables_of_a_same_namespace_template_stay_free(value: str) -> None:
    for ns in (None, "ns"):
        spec = parse_canary(canary(metrics=[tmetric(ns, v=value)]))
        assert isinstance(spec, CanarySpec), spec


def test_a_non_string_variable_of_another_namespaces_template_is_refused() -> None:
    err = parse_canary(canary(metrics=[tmetric("monitoring", v={"nested": 1})]))
    assert isinstance(err, SpecError) and "templateVariables.v" in err.message


@pytest.mark.parametrize(("argv", "env", "blocked"), [
    ([], None, False),  # Flagger's default
    (["-no-cross-namespace-refs"], None, True),  # Flagger's spelling
    (["-no-cross-namespace-refs=true"], None, True),
    (["-no-cross-namespace-refs=false"], "true", False),  # the flag wins over the environment
    (["--no-cross-namespace-refs"], None, True),
    (["--no-cross-namespace-refs=false"], None, False),
    ([], "true", True),
])
def test_the_flag_in_flaggers_spelling_and_ours(
    argv: list[str], env: str | None, blocked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from canaryd.cli import build_parser, settings_from_args

    if env is None:
        monkeypatch.delenv("CANARYD_NO_CROSS_NAMESPACE_REFS", raising=False)
    else:
        monkeypatch.setenv("CANARYD_NO_CROSS_NAMESPACE_REFS", env)
    settings = settings_from_args(build_parser().parse_args(["run", *argv]))
    assert settings.no_cross_namespace_refs is blocked


def test_a_bad_flag_value_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from canaryd.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "-no-cross-namespace-refs=maybe"])
    assert "'maybe' is not true or false" in capsys.readouterr().err
