"""The budgets a Canary author cannot raise: the check time budget, webhook timeout and retries bounds,
and the flags (with their environment variables) that set the answer caps and the query timeout."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from typing import Any

import pytest

from canaryd.analysis.base import check_timeout
from canaryd.cli import build_parser, settings_from_args
from canaryd.model.parse import parse_canary
from canaryd.model.spec import CanarySpec, SpecError

CANARY: dict[str, Any] = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "app", "namespace": "ns"},
    "spec": {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "service": {"port": 80},
        "analysis": {"interval": "1m", "stepWeight": 10, "threshold": 5, "webhooks": []},
    },
}


@pytest.mark.parametrize(("interval", "cap", "budget"), [
    (3600.0, 30.0, 30.0),  # an hour-long interval does not let a hung server hold the canary for an hour
    (10.0, 30.0, 10.0),  # a short interval still bounds its own step
    (0.5, 30.0, 1.0),  # never below a second
    (86400.0, 120.0, 120.0),
])
def test_check_budget(interval: float, cap: float, budget: float) -> None:
    assert check_timeout(interval, cap) == budget


def with_hook(**fields: Any) -> CanarySpec | SpecError:
    obj = copy.deepcopy(CANARY)
    obj["spec"]["analysis"]["webhooks"] = [{"name": "gate", "url": "http://lt/", **fields}]
    return parse_canary(obj)


@pytest.mark.parametrize(("fields", "timeout", "retries"), [
    ({}, 10.0, 0),
    ({"timeout": "10m", "retries": 10}, 600.0, 10),
    ({"timeout": "1m30s", "retries": 3}, 90.0, 3),
])
def test_webhook_bounds_accepted(fields: dict[str, Any], timeout: float, retries: int) -> None:
    spec = with_hook(**fields)
    assert isinstance(spec, CanarySpec), spec
    hook = spec.analysis.webhooks[0]
    assert (hook.timeout_seconds, hook.retries) == (timeout, retries)


HOOK = "spec.analysis.webhooks[0]"


@pytest.mark.parametrize(("fields", "message"), [
    ({"timeout": "10m1s"}, f"{HOOK}.timeout 10m1s is out of bounds: it must be between 1ms and 10m"),
    ({"timeout": "1h"}, f"{HOOK}.timeout 1h is out of bounds: it must be between 1ms and 10m"),
    ({"retries": 11}, f"{HOOK}.retries 11 is out of bounds: it must be between 0 and 10"),
    ({"retries": 10**9}, f"{HOOK}.retries 1000000000 is out of bounds"),
])
def test_webhook_bounds_refused(fields: dict[str, Any], message: str) -> None:
    spec = with_hook(**fields)
    assert isinstance(spec, SpecError), spec
    assert message in spec.message


ENV = {"CANARYD_MAX_METRICS_ANSWER_BYTES": "2Mi", "CANARYD_MAX_WEBHOOK_ANSWER_BYTES": "4096",
       "CANARYD_METRICS_QUERY_TIMEOUT": "45s"}


@pytest.fixture
def env() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def limits(*argv: str) -> tuple[int, int, float]:
    s = settings_from_args(build_parser().parse_args(["run", *argv]))
    return s.max_metrics_answer_bytes, s.max_webhook_answer_bytes, s.metrics_query_timeout


def test_flag_defaults() -> None:
    for name in ENV:
        assert name not in os.environ
    assert limits() == (10 * 1024 * 1024, 64 * 1024, 30.0)


def test_environment_sets_defaults_and_flags_win(env: None) -> None:
    assert limits() == (2 * 1024 * 1024, 4096, 45.0)
    assert limits("--max-metrics-answer-bytes", "1048576", "--max-webhook-answer-bytes", "1Ki",
                  "--metrics-query-timeout", "2m") == (1048576, 1024, 120.0)


@pytest.mark.parametrize("argv", [
    ["--max-metrics-answer-bytes", "0"], ["--max-metrics-answer-bytes", "10MB"],
    ["--max-webhook-answer-bytes", "-1Ki"], ["--metrics-query-timeout", "0s"],
    ["--metrics-query-timeout", "soon"],
])
def test_bad_flags_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", *argv])
    assert argv[0] in capsys.readouterr().err
