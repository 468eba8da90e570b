"""Micro-benchmark of the pure decision core (run on demand: ``python3 bench/bench_engine.py``).

``decide()`` runs on every wake-up of every canary task, so its cost bounds how many canaries one process
can drive. Measured for three states of the tutorial's Canary: a step not yet due (the most common
wake-up: a dependency changed), a step due (it asks for checks), and a revision change at rest."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from canaryd.engine.decide import decide
from canaryd.engine.types import CanaryStatus, DeploymentView, Inputs, Phase, Snapshot
from canaryd.model.parse import parse_canary
from canaryd.model.spec import CanarySpec

V1, V2 = "cd1:v1", "cd1:v2"


def tutorial() -> CanarySpec:
    obj: dict[str, Any] = {
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test", "uid": "u1", "generation": 1},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": {"interval": "30s", "threshold": 10, "maxWeight": 50, "stepWeight": 5,
                         "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99},
                                      "interval": "1m"}]},
        },
    }
    spec = parse_canary(obj)
    assert isinstance(spec, CanarySpec), spec
    return spec


def deployment(name: str, h: str) -> DeploymentView:
    return DeploymentView(name=name, generation=2, observed_generation=2, spec_replicas=2, status_replicas=2,
                          updated_replicas=2, available_replicas=2, ready_replicas=2, template_hash=h,
                          selector_label="app", selector_value=name)


def snapshot(routes: tuple[int, int], target_hash: str) -> Snapshot:
    return Snapshot(target=deployment("podinfo", target_hash), primary=deployment("podinfo-primary", V1),
                    hpa_min_replicas=None, hpa_exists=False, routes=routes, mirrored=False,
                    primary_template_matches_target=False)


def per_call(fn: Callable[[], object], n: int, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(n):
            fn()
        out.append((time.perf_counter() - started) / n)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=20000, help="calls per repeat")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    spec = tutorial()
    running = CanaryStatus(phase=Phase.PROGRESSING, canary_weight=10, last_applied_spec=V2,
                           last_promoted_spec=V1, observed_generation=1)
    cases: dict[str, Callable[[], object]] = {
        "step not due (dependency wake-up)": lambda: decide(
            spec, CanaryStatus(**{**running.__dict__, "next_step_at": 1e12}), snapshot((90, 10), V2),
            Inputs(now=100.0)),
        "step due (asks for checks)": lambda: decide(
            spec, CanaryStatus(**{**running.__dict__, "next_step_at": 50.0}), snapshot((90, 10), V2),
            Inputs(now=100.0)),
        "new revision at rest": lambda: decide(
            spec, CanaryStatus(phase=Phase.SUCCEEDED, last_applied_spec=V1, last_promoted_spec=V1,
                               observed_generation=1), snapshot((100, 0), V2), Inputs(now=100.0)),
    }
    print(f"decide() per call, {args.n} calls x {args.repeats} repeats (median, min)")
    for name, fn in cases.items():
        times = per_call(fn, args.n, args.repeats)
        print(f"  {name:38s} {statistics.median(times) * 1e6:7.1f} µs  {min(times) * 1e6:7.1f} µs")


if __name__ == "__main__":
    main()
