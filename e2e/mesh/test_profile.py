"""The simulator's per-revision latency profile: read from the pod template's env, lognormal around
its median times its factor, and absent (the old behaviour) without ``BED_LATENCY_MEDIAN_MS``."""

from __future__ import annotations

import math
import random
import statistics
from typing import Any

from e2e.mesh.routing import workload_behaviour


def deployment(env: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": "podinfo"},
            "spec": {"template": {"metadata": {"labels": {"app": "podinfo"}},
                                  "spec": {"containers": [{"image": "podinfo:6.0.1",
                                                           "env": [{"name": k, "value": v}
                                                                   for k, v in env.items()]}]}}}}


def test_without_a_profile_nothing_changes() -> None:
    b = workload_behaviour(deployment({"BED_LATENCY_MS": "20"}))
    assert (b.latency_ms, b.latency_median_ms, b.profile_ms(random.Random(1))) == (20, 0, 0)


def test_a_shifted_profile_is_the_same_distribution_times_its_factor() -> None:
    base = workload_behaviour(deployment({"BED_LATENCY_MEDIAN_MS": "40", "BED_LATENCY_SIGMA": "0.3"}))
    slow = workload_behaviour(deployment({"BED_LATENCY_MEDIAN_MS": "40", "BED_LATENCY_SIGMA": "0.3",
                                          "BED_LATENCY_FACTOR": "1.3"}))
    assert slow.profile_ms(random.Random(7)) == base.profile_ms(random.Random(7)) * 1.3  # the same draw
    rng = random.Random(3)
    draws = [base.profile_ms(rng) for _ in range(4000)]
    assert 38 < statistics.median(draws) < 42
    assert 0.28 < statistics.stdev([math.log(d) for d in draws]) < 0.32
