"""Canary durations: the parser accepts exactly what the CRDs accept (the table is shared with
e2e/test_crds.py, which feeds it to the bed's API server), and no value reaches the engine unbounded."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from canaryd.model.durations import (
    INTERVAL_BOUNDS,
    SPEC_MAX_LENGTH,
    SPEC_PATTERN,
    WEBHOOK_TIMEOUT_BOUNDS,
    DurationError,
    parse_spec_duration,
    spec_duration_ms,
)
from canaryd.model.parse import MAX_PROGRESS_DEADLINE_SECONDS, parse_canary
from canaryd.model.parse_analysis import WEBHOOK_MAX_RETRIES
from canaryd.model.spec import CanarySpec, SpecError
from e2e.duration_cases import CASES

from .test_parse import MINIMAL


def canary(interval: str | None = None, metric_interval: str | None = None) -> dict[str, Any]:
    obj = copy.deepcopy(MINIMAL)
    if interval is not None:
        obj["spec"]["analysis"]["interval"] = interval
    if metric_interval is not None:
        obj["spec"]["analysis"]["metrics"][0]["interval"] = metric_interval
    return obj


@pytest.mark.parametrize(("text", "accepted"), CASES, ids=[repr(t)[:40] for t, _ in CASES])
def test_analysis_interval_agrees_with_the_crd(text: str, accepted: bool) -> None:
    parsed = parse_canary(canary(interval=text))
    if accepted:
        assert isinstance(parsed, CanarySpec), parsed
        assert 1.0 <= parsed.analysis.interval_seconds <= 86_400.0
    else:
        assert isinstance(parsed, SpecError), parsed
        assert parsed.message.startswith("spec.analysis.interval "), parsed.message
        assert "between 1s and 24h" in parsed.message  # names the field and the bounds


@pytest.mark.parametrize(("text", "accepted"), CASES, ids=[repr(t)[:40] for t, _ in CASES])
def test_metric_interval_agrees_with_the_crd(text: str, accepted: bool) -> None:
    parsed = parse_canary(canary(metric_interval=text))
    if accepted:
        assert isinstance(parsed, CanarySpec), parsed
        assert parsed.analysis.metrics[0].interval == text  # sent to Prometheus as written
    else:
        assert isinstance(parsed, SpecError), parsed
        assert parsed.message.startswith("spec.analysis.metrics[0].interval "), parsed.message


@pytest.mark.parametrize(("text", "ms"), [("1m30s", 90_000), ("1500ms", 1500), ("2h", 7_200_000),
                                          ("9" * 40 + "s", int("9" * 40) * 1000)])
def test_spec_durations_are_exact_integers(text: str, ms: int) -> None:
    assert spec_duration_ms(text) == ms


def test_out_of_bounds_message_names_the_bounds() -> None:
    with pytest.raises(DurationError, match="between 1s and 24h"):
        parse_spec_duration("999ms", INTERVAL_BOUNDS)


def _crd_versions() -> list[tuple[str, dict[str, Any]]]:
    path = Path(__file__).resolve().parents[2] / "manifests" / "crd" / "canaries.yaml"
    doc = yaml.safe_load(path.read_text())
    versions = doc["spec"]["versions"]
    return [(v["name"], v["schema"]["openAPIV3Schema"]["properties"]["spec"]) for v in versions]


@pytest.mark.parametrize(("version", "spec"), _crd_versions())
def test_the_crd_states_the_parsers_syntax_and_bounds(version: str, spec: dict[str, Any]) -> None:
    """The CRD (manifests/crd/generate.py) and the parser share the pattern, length and bounds; the e2e
    test checks the API server applies them."""
    bounds = f"duration(self) >= duration('{INTERVAL_BOUNDS.low}') && duration(self) <= " \
             f"duration('{INTERVAL_BOUNDS.high}')"
    for key in ("analysis", "canaryAnalysis"):
        analysis = spec["properties"][key]["properties"]
        for field in (analysis["interval"], analysis["metrics"]["items"]["properties"]["interval"]):
            assert (field["pattern"], field["maxLength"]) == (SPEC_PATTERN, SPEC_MAX_LENGTH)
            (rule,) = field["x-kubernetes-validations"]
            assert bounds in rule["rule"], rule
            assert INTERVAL_BOUNDS.text() in rule["message"]
    assert spec["properties"]["progressDeadlineSeconds"]["maximum"] == MAX_PROGRESS_DEADLINE_SECONDS
    hook_bounds = f"duration(self) >= duration('{WEBHOOK_TIMEOUT_BOUNDS.low}') && duration(self) <= " \
                  f"duration('{WEBHOOK_TIMEOUT_BOUNDS.high}')"
    for key in ("analysis", "canaryAnalysis"):
        hook = spec["properties"][key]["properties"]["webhooks"]["items"]["properties"]
        assert (hook["timeout"]["pattern"], hook["timeout"]["maxLength"]) == (SPEC_PATTERN, SPEC_MAX_LENGTH)
        (rule,) = hook["timeout"]["x-kubernetes-validations"]
        assert hook_bounds in rule["rule"], rule
        assert hook["retries"]["maximum"] == WEBHOOK_MAX_RETRIES
