"""Property-based fuzzing: mutated Canaries, MetricTemplates and AlertProviders (seeded from the shipped
example and the e2e specs, tests/fuzz/seeds.py) go through parsing and, when they parse, through one pass
of the decision core, exactly as the runtime would feed them. Nothing may raise except the model's own
validation errors (``SpecError`` is returned, ``ShapeError``/``RenderError`` raised): an exception here is
a Canary author taking canaryd down.

Deterministic (``derandomize``) so CI runs the same 10,000 cases each time; the time it takes is reported
by pytest's ``--durations``, not asserted.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canaryd.analysis.query_template import RenderError, TemplateVars, render
from canaryd.engine.driver import Answers, drive
from canaryd.engine.status import status_from_dict, status_to_dict
from canaryd.engine.types import CanaryStatus, CheckResult, Decision, DeploymentView, HookResult, Snapshot
from canaryd.model.parse import parse_canary
from canaryd.model.providers import parse_alert_provider, parse_metric_template
from canaryd.model.references import check_references
from canaryd.model.shapes import ShapeError
from canaryd.model.spec import CanarySpec, SpecError
from canaryd.notify.payloads import PROVIDER_TYPES, endpoint

from .seeds import alert_providers, canaries, metric_templates

FUZZ = settings(derandomize=True, max_examples=10000, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

NOW = 1_785_000_000.0  # a fixed "now" (2026): the seeds' status times are around it


def _keys(node: Any, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            out.add(k)
            _keys(v, out)
    elif isinstance(node, list):
        for v in node:
            _keys(v, out)
    return out


CANARY_SEEDS = canaries()
TEMPLATE_SEEDS = metric_templates()
PROVIDER_SEEDS = alert_providers()
KEYS = sorted(_keys([CANARY_SEEDS, TEMPLATE_SEEDS, PROVIDER_SEEDS], set()))

STRINGS = [
    "", "0", "1ms", "500ms", "1s", "1m30s", "24h", "25h", "9" * 40 + "s", "4" * 400 + "h", "-1s", "1.5m",
    "1e3s",
    "istio", "Deployment", "DaemonSet", "HorizontalPodAutoscaler", "ScaledObject", "autoscaling/v2",
    "flagger.app/v1beta1", "flagger.app/v1alpha3", "prometheus", "datadog", "slack", "msteams", "discord",
    "confirm-rollout", "pre-rollout", "rollout", "confirm-promotion", "post-rollout", "rollback", "event",
    "Progressing", "Promoting", "Finalising", "Succeeded", "Failed", "WaitingPromotion", "Waiting",
    "http://x/", "http://user:pass@x:9090/p?q=1", "not a url", "{{ name }}", "{{ variables.reporter }}",
    "{{", "}}", "{{ . }}", "{{- -}}", "2026-07-25T10:44:21Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
    "cd1:abc", "cd1:new", "\x00", "a\r\nb: c", "é", "x" * 300, "request-success-rate", "request-duration",
    "istio_requests_total", "istio_request_duration_seconds_bucket", "test", "ops", "istio-system",
]
INTS = [0, 1, -1, 2, 5, 10, 50, 99, 100, 101, 2**31 - 1, 2**31, 2**53 + 1, 2**63, 10**30, -(10**30)]

SCALARS = st.one_of(
    st.none(), st.booleans(), st.sampled_from(INTS), st.integers(),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(STRINGS), st.text(max_size=12),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    max_leaves=6,
)


DURATIONS = ["1ms", "1s", "1500ms", "1m30s", "24h", "25h", "0", "-1s", "1.5m", "9" * 40 + "s",
             "4" * 400 + "h", "1e308s", "", 30, 0.5]
TIMES = ["2026-07-25T10:44:21Z", "2026-07-25T10:45:21.123Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
         "2026-13-45T99:99:99Z", "nan", "", 1e308, -1]
NUMBERS = [*INTS, 0.5, 99.9, -0.0, 1e308, -1e308, float("inf"), float("nan"), "10", True]
# the values a field's neighbours are most likely to break on, by key name
TYPED: dict[str, list[Any]] = {
    **dict.fromkeys(["interval", "timeout"], DURATIONS),
    **dict.fromkeys(["nextStepAt", "waitingSince", "lastTransitionTime", "lastUpdateTime"], TIMES),
    **dict.fromkeys(["progressDeadlineSeconds", "threshold", "maxWeight", "stepWeight", "iterations", "port",
                     "canaryWeight", "failedChecks", "mirrorWeight", "stepWeightPromotion", "retries",
                     "primaryReadyThreshold", "canaryReadyThreshold", "generation", "observedGeneration",
                     "min", "max", "value", "maxAge", "targetPort", "minReplicas", "maxReplicas"], NUMBERS),
    "stepWeights": [[], [1], [50, 10], [1, 5, 101], [2**63], [0.5], ["10"], [1] * 200],
    "phase": ["", "Initializing", "Initialized", "Waiting", "Progressing", "WaitingPromotion", "Promoting",
              "Finalising", "Succeeded", "Failed", "Terminating", "Terminated", "Sideways"],
    "verdict": ["pass", "fail", "error", "nodata", "maybe"],
    "lastAppliedSpec": ["cd1:abc", "cd1:new", "", "12345", "x" * 300],
    "lastPromotedSpec": ["cd1:abc", "cd1:new", "", "12345", "x" * 300],
    "namespace": ["test", "ops", "istio-system", "", "a.b"],
    "templateVariables": [{"reporter": 'x"} or vector(1) #'}, {"r": ["a"]}, {}, {"": ""}],
}


def _slots(node: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) in the object, depth first."""
    if isinstance(node, dict):
        for k in list(node):
            out.append((node, k))
            _slots(node[k], out)
    elif isinstance(node, list):
        for i in range(len(node)):
            out.append((node, i))
            _slots(node[i], out)
    return out


@st.composite
def mutated(draw: st.DrawFn, seeds: list[dict[str, Any]]) -> dict[str, Any]:
    """A seed with 1-5 mutations: a value replaced (by a value its field is likely to break on, any JSON,
    its string form, a list of it), a key deleted or added, a list emptied or grown."""
    obj: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 5))):
        slots = _slots(obj, [])
        if not slots:
            break
        op = draw(st.sampled_from(["typed", "typed", "typed", "replace", "delete", "add", "stringify", "wrap",
                                   "grow"]))
        if op == "typed":  # among the fields with values of their own
            slots = [(c, k) for c, k in slots if isinstance(k, str) and k in TYPED] or slots
        container, key = slots[draw(st.integers(0, len(slots) - 1))]
        if op == "typed":
            choices = TYPED.get(key) if isinstance(key, str) else None
            container[key] = copy.deepcopy(draw(st.sampled_from(choices))) if choices else draw(SCALARS)
        elif op == "replace":
            container[key] = draw(VALUES)
        elif op == "delete":
            del container[key]
        elif op == "add":
            target = container[key] if isinstance(container[key], dict) else container
            if isinstance(target, dict):
                target[draw(st.sampled_from(KEYS))] = draw(VALUES)
        elif op == "stringify":
            container[key] = str(container[key])
        elif op == "wrap":
            container[key] = [container[key]]
        elif isinstance(container[key], list):
            container[key] = container[key] * draw(st.integers(0, 3))
    return obj


def _view(name: str, template: str, replicas: int = 2) -> DeploymentView:
    return DeploymentView(name=name, generation=2, observed_generation=2, spec_replicas=replicas,
                          status_replicas=replicas, updated_replicas=replicas, available_replicas=replicas,
                          ready_replicas=replicas, template_hash=template, selector_label="app",
                          selector_value=name)


SNAPSHOTS = [
    Snapshot(target=None, primary=None),
    Snapshot(target=_view("podinfo", "cd1:abc", 1), primary=None, hpa_min_replicas=2, hpa_exists=True),
    Snapshot(target=_view("podinfo", "cd1:new"), primary=_view("podinfo-primary", "cd1:abc"),
             routes=(80, 20), mirrored=False, primary_template_matches_target=False),
    Snapshot(target=_view("podinfo", "cd1:abc", 0), primary=_view("podinfo-primary", "cd1:abc"),
             routes=(100, 0), primary_template_matches_target=True, config_checksums=(("configmap/c", "1"),)),
    Snapshot(target=_view("podinfo", "cd1:new"), primary=_view("podinfo-primary", "cd1:old", 0),
             routes=(0, 100), mirrored=True, duplicate_of="other.test", config_error="configmap c not found"),
]
VERDICTS = ["pass", "fail", "error", "nodata"]


def _in_step_with(status: CanaryStatus) -> Snapshot:
    """The world the status describes (same revision and configs, weights as routed, both Deployments
    ready), so a mutated status reaches the analysis and the scheduling of the next step."""
    target = status.last_applied_spec or "cd1:abc"
    primary = status.last_promoted_spec or target
    return Snapshot(target=_view("podinfo", target), primary=_view("podinfo-primary", primary),
                    config_checksums=status.tracked_configs, hpa_min_replicas=2, hpa_exists=True,
                    routes=(100 - status.canary_weight, status.canary_weight), mirrored=status.mirrored,
                    primary_template_matches_target=status.last_promoted_spec == target)


def _one_pass(spec: CanarySpec, raw_status: Any, snap: Snapshot | None, verdict: str, hook_ok: bool) -> None:
    """One runtime pass through the driver: decide, answer its requests (checks, hooks), and write the
    status the way the runtime does. ``snap`` None: the world the status describes."""
    status = status_from_dict(raw_status)
    snap = snap if snap is not None else _in_step_with(status)
    def answer(d: Decision) -> Answers:
        checks = tuple(CheckResult(m.name, verdict, 1.0 if verdict != "nodata" else None, "<= 1", "m")
                       for m in spec.analysis.metrics) if d.analyse else None
        hooks = {req.hook_type: tuple(HookResult(h.name, hook_ok, "" if hook_ok else "no")
                                      for h in spec.analysis.webhooks if h.type == req.hook_type)
                 for req in d.requests}
        return Answers(now=NOW, checks=checks, hooks=hooks)
    d = drive(spec, status, snap, NOW, answer)
    if d.status is not None:
        status_from_dict(status_to_dict(d.status))


@FUZZ
@given(obj=mutated(CANARY_SEEDS), snap=st.none() | st.none() | st.sampled_from(SNAPSHOTS),
       verdict=st.sampled_from(VERDICTS), hook_ok=st.booleans(), cross=st.booleans())
def test_mutated_canaries_never_raise(obj: dict[str, Any], snap: Snapshot | None, verdict: str, hook_ok: bool,
                                      cross: bool) -> None:
    parsed = parse_canary(obj, cross_namespace_refs=cross)
    assert isinstance(parsed, (CanarySpec, SpecError))
    if isinstance(parsed, SpecError):
        assert parsed.message
        return
    _one_pass(parsed, obj.get("status"), snap, verdict, hook_ok)


VARS = TemplateVars(name="podinfo", namespace="test", target="podinfo", service="podinfo", interval="1m",
                    variables={"reporter": "destination"})


@FUZZ
@given(obj=mutated(TEMPLATE_SEEDS), only_safe=st.booleans())
def test_mutated_metric_templates_never_raise(obj: dict[str, Any], only_safe: bool) -> None:
    try:
        template = parse_metric_template(obj)
    except ShapeError as e:
        assert str(e)
        return
    try:
        render(template.query, VARS, only_safe=only_safe)
    except RenderError as e:
        assert str(e)


@FUZZ
@given(obj=mutated(PROVIDER_SEEDS))
def test_mutated_alert_providers_never_raise(obj: dict[str, Any]) -> None:
    try:
        provider = parse_alert_provider(obj)
    except ShapeError as e:
        assert str(e)
        return
    if provider.type in PROVIDER_TYPES:
        endpoint(provider.type, provider.address)


def test_every_seed_is_valid() -> None:
    """The fuzz starts from objects that parse, so mutations explore near real input (and reach decide)."""
    for obj in CANARY_SEEDS:
        spec = parse_canary(obj)
        assert isinstance(spec, CanarySpec), spec
        check_references(spec.namespace, spec.analysis, "spec.analysis", allow_cross_namespace=True)
    for obj in TEMPLATE_SEEDS:
        parse_metric_template(obj)
    for obj in PROVIDER_SEEDS:
        assert parse_alert_provider(obj).type in PROVIDER_TYPES
