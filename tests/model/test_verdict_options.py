"""canaryd's verdict options (consecutiveErrorLimit, nodata, dryRun, initialDelay, inconclusiveRange,
analysis.inconclusiveTimeout) are read with Flagger's behaviour as the defaults, and a bad value makes
the Canary invalid with a message naming the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from canaryd.engine.decide import decide_invalid
from canaryd.engine.types import CanaryStatus
from canaryd.model.parse import parse_canary
from canaryd.model.spec import DEFAULT_POLICY, CanarySpec, CheckPolicy, SpecError, ThresholdRange

from .test_parse import MINIMAL

TEMPLATE_METRIC = {"name": "errors", "templateRef": {"name": "errors"}, "thresholdRange": {"max": 1}}


def canary(metric: dict[str, Any] | None = None, webhook: dict[str, Any] | None = None,
           **analysis: Any) -> dict[str, Any]:
    obj = copy.deepcopy(MINIMAL)
    a = obj["spec"]["analysis"]
    a["metrics"].append({**TEMPLATE_METRIC, **(metric or {})})
    a["webhooks"][0].update(webhook or {})
    a.update(analysis)
    return obj


def parsed(obj: dict[str, Any]) -> CanarySpec:
    spec = parse_canary(obj)
    assert isinstance(spec, CanarySpec), spec
    return spec


def test_defaults_are_flaggers_behaviour() -> None:
    spec = parsed(canary())
    assert all(m.policy == DEFAULT_POLICY for m in spec.analysis.metrics)
    assert spec.analysis.webhooks[0].policy == DEFAULT_POLICY
    assert DEFAULT_POLICY == CheckPolicy(consecutive_error_limit=1, nodata="fail", dry_run=False,
                                         initial_delay_seconds=0.0)
    assert spec.analysis.inconclusive_timeout_seconds is None
    assert spec.analysis.metrics[1].inconclusive_range is None


def test_verdict_options_parse() -> None:
    options = {"consecutiveErrorLimit": 3, "nodata": "ignore", "dryRun": True, "initialDelay": "1m30s"}
    spec = parsed(canary({**options, "inconclusiveRange": {"min": 1, "max": 5}}, options,
                         inconclusiveTimeout="10m"))
    want = CheckPolicy(consecutive_error_limit=3, nodata="ignore", dry_run=True, initial_delay_seconds=90.0)
    assert spec.analysis.metrics[1].policy == want
    assert spec.analysis.webhooks[0].policy == want
    assert spec.analysis.metrics[1].inconclusive_range == ThresholdRange(1.0, 5.0)
    assert spec.analysis.inconclusive_timeout_seconds == 600.0
    assert parsed(canary({"inconclusiveRange": {"max": 2}})).analysis.metrics[1].inconclusive_range == \
        ThresholdRange(None, 2.0)
    assert parsed(canary({"initialDelay": "0s"})).analysis.metrics[1].policy == DEFAULT_POLICY


BUILTIN = {"name": "request-success-rate", "thresholdRange": {"min": 99}, "inconclusiveRange": {"min": 95}}
BAD: list[tuple[dict[str, Any], str]] = [
    (canary({"consecutiveErrorLimit": -1}),
     "spec.analysis.metrics[1].consecutiveErrorLimit -1 must be at least 1"),
    (canary({"consecutiveErrorLimit": 0}),
     "spec.analysis.metrics[1].consecutiveErrorLimit 0 must be at least 1"),
    (canary({"consecutiveErrorLimit": "3"}),
     "spec.analysis.metrics[1].consecutiveErrorLimit must be a whole"),
    (canary({"nodata": "skip"}), "spec.analysis.metrics[1].nodata skip is unknown; use fail (the default) or "
                                 "ignore"),
    (canary({"dryRun": "yes"}), "spec.analysis.metrics[1].dryRun must be true or false"),
    (canary({"initialDelay": "soon"}), "spec.analysis.metrics[1].initialDelay soon is not a duration"),
    (canary({"initialDelay": "-1s"}), "spec.analysis.metrics[1].initialDelay -1s is not a duration"),
    (canary({"initialDelay": "25h"}), "spec.analysis.metrics[1].initialDelay 25h is out of bounds"),
    (canary({"inconclusiveRange": {"min": 5, "max": 1}}),
     "spec.analysis.metrics[1].inconclusiveRange.min 5 is above max 1"),
    (canary({"inconclusiveRange": {}}), "spec.analysis.metrics[1].inconclusiveRange has neither min nor max"),
    (canary({"inconclusiveRange": {"min": "a"}}), "spec.analysis.metrics[1].inconclusiveRange.min must be a "
                                                  "number"),
    (canary(webhook={"consecutiveErrorLimit": -2}),
     "spec.analysis.webhooks[0].consecutiveErrorLimit -2 must be at least 1"),
    (canary(webhook={"nodata": 7}), "spec.analysis.webhooks[0].nodata 7 is unknown"),
    (canary(webhook={"type": "confirm-promotion", "dryRun": True}),
     "spec.analysis.webhooks[0].dryRun is set on webhook t of type confirm-promotion; verdict options apply "
     "to rollout webhooks"),
    (canary(inconclusiveTimeout="forever"), "spec.analysis.inconclusiveTimeout forever is not a duration"),
    (canary(inconclusiveTimeout="0s"), "spec.analysis.inconclusiveTimeout 0s is out of bounds"),
]


@pytest.mark.parametrize(("obj", "needle"), BAD)
def test_invalid_verdict_options_name_the_field(obj: dict[str, Any], needle: str) -> None:
    err = parse_canary(obj)
    assert isinstance(err, SpecError), err
    assert needle in err.message
    d = decide_invalid(CanaryStatus(), err.message, 1.0)  # how the runtime reports it: Valid=False
    assert d.status is not None
    valid = [c for c in d.status.conditions if c["type"] == "Valid"]
    assert valid and valid[0]["status"] == "False" and needle in valid[0]["message"]


def test_inconclusive_range_refused_on_builtins() -> None:
    obj = copy.deepcopy(MINIMAL)
    obj["spec"]["analysis"]["metrics"] = [BUILTIN]
    err = parse_canary(obj)
    assert isinstance(err, SpecError)
    assert ("spec.analysis.metrics[0].inconclusiveRange is set on the builtin check request-success-rate"
            in err.message)
