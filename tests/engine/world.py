"""A dict-based fake world for driving ``decide`` with a fake clock: Deployments that roll out on a
schedule, a VirtualService whose weights follow ``SetRoutes``, hooks and checks with canned answers.
It calls ``decide`` through the runtime's driver (engine/driver.py: request rounds), status written through
``status_to_dict``/``status_from_dict`` before actions, another call after every change)."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from canaryd.engine.driver import Answers, Drive
from canaryd.engine.status import status_from_dict, status_to_dict
from canaryd.engine.types import (
    Action,
    CanaryStatus,
    CheckResult,
    Decision,
    DeploymentView,
    Emit,
    EnsurePrimary,
    EnsureServicesAndRouting,
    HookResult,
    Promote,
    RunHooks,
    ScaleTarget,
    SetRoutes,
    Snapshot,
)
from canaryd.model.parse import parse_canary
from canaryd.model.spec import CanarySpec

READY_AFTER = (4.0, 5.0)  # seconds after a scale-up at which each new pod becomes available


@dataclass
class Dep:
    name: str
    template: str
    replicas: int = 1
    generation: int = 1
    observed: int = 1
    status_replicas: int = 1
    updated: int = 1
    available: int = 1

    def view(self) -> DeploymentView:
        return DeploymentView(
            name=self.name, generation=self.generation, observed_generation=self.observed,
            spec_replicas=self.replicas, status_replicas=self.status_replicas, updated_replicas=self.updated,
            available_replicas=self.available, ready_replicas=self.available, template_hash=self.template,
            selector_label="app", selector_value=self.name,
        )


@dataclass
class Row:
    t: float
    phase: str
    weight: int
    checks: str
    events: list[str]


@dataclass
class World:
    spec: CanarySpec
    target: Dep
    primary: Dep | None = None
    primary_template: str | None = None  # what the primary runs (normalised: comparable to target)
    routes: tuple[int, int] | None = None
    mirrored: bool = False
    status: CanaryStatus = field(default_factory=CanaryStatus)
    hpa_min: int | None = 2
    check_results: Callable[[float], tuple[CheckResult, ...]] = lambda t: ()
    hook_results: Callable[[str, float], tuple[HookResult, ...]] = lambda kind, t: ()
    events: list[tuple[float, Emit]] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    calls: int = 0
    writes: int = 0
    _timers: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    _seq: int = 0

    # ---- the world's own clockwork ----
    def at(self, t: float, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (t, self._seq, fn))

    def rollout(self, dep: Dep, now: float, *, old_replicas: int) -> None:
        """Model a Deployment rolling out after a spec change: observed 1 s later; from zero, pod i is
        available READY_AFTER[i] s later; a template change replaces the old pods one by one."""
        gen, n = dep.generation, dep.replicas

        def set_(**kw: int) -> Callable[[], None]:
            def fn() -> None:
                for k, v in kw.items():
                    setattr(dep, k, v)
            return fn

        if not old_replicas or not n:
            self.at(now + 1.0, set_(observed=gen, status_replicas=n, updated=n, available=0))
            for i in range(n):
                self.at(now + READY_AFTER[min(i, len(READY_AFTER) - 1)], set_(available=i + 1))
            return
        self.at(now + 1.0,
                set_(observed=gen, status_replicas=old_replicas, updated=0, available=old_replicas))
        self.at(now + 4.0, set_(status_replicas=old_replicas + 1, updated=1))
        self.at(now + 6.0, set_(status_replicas=old_replicas + 1, updated=n))
        self.at(now + 8.0, set_(status_replicas=n, updated=n, available=n))

    def snapshot(self) -> Snapshot:
        return Snapshot(
            target=self.target.view(),
            primary=self.primary.view() if self.primary else None,
            hpa_min_replicas=self.hpa_min,
            hpa_exists=self.hpa_min is not None,
            routes=self.routes,
            mirrored=self.mirrored if self.routes is not None else None,
            primary_template_matches_target=(
                None if self.primary is None else self.primary_template == self.target.template
            ),
        )

    # ---- carrying out actions ----
    def apply(self, action: Action, now: float) -> None:
        if isinstance(action, Emit):
            self.events.append((now, action))
        elif isinstance(action, EnsurePrimary):
            if self.primary is None:
                self.primary = Dep(f"{self.target.name}-primary", self.target.template, replicas=2,
                                   generation=1, observed=0, status_replicas=0, updated=0, available=0)
                self.primary_template = self.target.template
                self.rollout(self.primary, now, old_replicas=0)
        elif isinstance(action, EnsureServicesAndRouting):
            if self.routes is None and action.routes is not None:
                self.routes = (action.routes.primary, action.routes.canary)
        elif isinstance(action, ScaleTarget):
            if self.target.replicas != action.replicas:
                self.target.replicas = action.replicas
                self.target.generation += 1
                self.rollout(self.target, now, old_replicas=0)
        elif isinstance(action, SetRoutes):
            self.routes = (action.primary, action.canary)
            self.mirrored = action.mirror
        elif isinstance(action, Promote):
            assert self.primary is not None
            old = self.primary.replicas
            self.primary_template = self.target.template
            self.primary.template = self.target.template
            self.primary.generation += 1
            self.rollout(self.primary, now, old_replicas=old)
        elif isinstance(action, RunHooks):
            for r in self.hook_results(action.hook_type, now):
                self.events.append((now, Emit(f"({action.hook_type} hook {r.name} ran)")))

    # ---- the runtime's loop ----
    def call(self, now: float) -> Decision:
        self.calls += 1
        drive = Drive(self.spec, self.status, self.snapshot(), now)
        while (d := drive.decision).is_request:
            hooks = {r.hook_type: self.hook_results(r.hook_type, now) for r in d.requests}
            drive.answer(Answers(now=now, checks=self.check_results(now) if d.analyse else None, hooks=hooks))
        inputs = drive.inputs
        before = len(self.events)
        if d.status is not None:
            self.writes += 1
            self.status = status_from_dict(status_to_dict(d.status))
        for a in d.actions:
            self.apply(a, now)
        new_events = [e.message for _, e in self.events[before:]]
        weight_changed = any(isinstance(a, SetRoutes) for a in d.actions)
        if new_events or weight_changed:
            checks_text = ""
            if d.status is not None and d.status.checks and inputs.checks is not None:
                ok = sum(1 for c in d.status.checks if c.verdict == "pass")
                checks_text = f"{ok}/{len(d.status.checks)} pass"
            phase = self.status.phase.value if self.status.phase else ""
            self.rows.append(Row(now, phase, self.status.canary_weight, checks_text, new_events))
        return d

    def run(self, start: float, until: float, *, stop: Callable[[World], bool] = lambda w: False) -> None:
        """Advance the clock from ``start``: call decide now, after every change, at each wake_at and
        at each world event, until ``stop`` or ``until``."""
        now = start
        wake: float | None = None
        pending = True  # something changed: the runtime would be woken by the cache
        guard = 0
        while now <= until and not stop(self):
            if pending or (wake is not None and now >= wake):
                d = self.call(now)
                wake = d.wake_at
                pending = d.status is not None or bool(d.actions)
                guard = guard + 1 if pending else 0
                assert guard < 50, f"no quiescence at t={now}: {d}"
                if pending:
                    continue
            nxt = [t for t in (wake, self._timers[0][0] if self._timers else None) if t is not None]
            if not nxt:
                return
            now = max(now, min(nxt))
            while self._timers and self._timers[0][0] <= now:
                _, _, fn = heapq.heappop(self._timers)
                fn()
                pending = True


def tutorial_canary(**analysis_overrides: Any) -> CanarySpec:
    """The 2019 tutorial's Canary (v1alpha3, interval 30s, stepWeight 5, maxWeight 50, threshold 10)."""
    analysis: dict[str, Any] = {
        "interval": "30s", "threshold": 10, "maxWeight": 50, "stepWeight": 5,
        "metrics": [
            {"name": "istio_requests_total", "threshold": 99, "interval": "30s"},
            {"name": "istio_request_duration_seconds_bucket", "threshold": 500, "interval": "30s"},
        ],
        "webhooks": [{"name": "load-test", "url": "http://flagger-loadtester.test/", "timeout": "5s",
                      "metadata": {"cmd": "hey -z 1m -q 10 -c 2 http://podinfo.test:9898/"}}],
    }
    analysis.update(analysis_overrides)
    obj = {
        "apiVersion": "flagger.app/v1alpha3", "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test", "uid": "u1", "generation": 1},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "progressDeadlineSeconds": 60,
            "autoscalerRef": {"apiVersion": "autoscaling/v2beta1", "kind": "HorizontalPodAutoscaler",
                              "name": "podinfo"},
            "service": {"port": 9898, "gateways": ["public-gateway.istio-system.svc.cluster.local"],
                        "hosts": ["app.istio.example.com"]},
            "canaryAnalysis": analysis,
        },
    }
    spec = parse_canary(obj)
    assert isinstance(spec, CanarySpec), spec
    return spec


def passing_checks(t: float) -> tuple[CheckResult, ...]:
    return (
        CheckResult("istio_requests_total", "pass", 99.93, ">= 99%", ""),
        CheckResult("istio_request_duration_seconds_bucket", "pass", 352.0, "<= 500ms", ""),
    )


def initialized_world(spec: CanarySpec | None = None, **kw: Any) -> World:
    """A world where the tutorial's canary has been initialized (primary on v1, target at 0)."""
    w = World(spec=spec or tutorial_canary(), target=Dep("podinfo", "cd1:v1", replicas=1), **kw)
    w.run(-100.0, -1.0)
    assert w.status.phase is not None and w.status.phase.value == "Initialized", w.status
    w.rows.clear()
    w.events.clear()
    return w


def change_image(w: World, template: str = "cd1:v2") -> None:
    w.target = replace(w.target, template=template)
