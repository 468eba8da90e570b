"""The benchmark's smallest size in CI, so it cannot rot (issue 6): canaryd alone, two canaries at 2 s steps
in the test's namespace on the shared bed, measured exactly as ``python3 -m bench`` measures (watch receipts,
the audit log, /proc), then the report rendered. Flagger is not built for this."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import report, run, scenario


async def test_smallest_benchmark_run_measures_canaryd(bed: Any, namespace: str, tmp_path: Path) -> None:
    res = await scenario.run(bed, "canaryd", 2, 2, rounds=1, idle=2.0, log_dir=tmp_path, namespace=namespace,
                             create_namespace=False, cap_factor=3.0)
    assert res.phases == {"Succeeded": 2}, (res.phases, res.notes)
    assert len(res.reaction_event) == 2 and len(res.reaction_scale) == 2, res.notes
    assert len(res.run_wall) == 2 and len(res.lateness) == 2 * res.steps
    assert res.cpu_per_min is not None and res.cpu_per_min > 0
    assert res.peak_rss_mib is not None and res.peak_rss_mib > 10
    # the audit log saw canaryd's writes, and in steady state canaryd reads nothing from the API server
    assert res.api is not None and res.api.writes > 0, res.api
    # every write sorted by kind (bench/writekinds.py): the run's status writes, route patches and Events
    assert sum(res.api.by_kind.values()) == res.api.writes, res.api
    assert {"Canary status update", "VirtualService patch", "Event create"} <= set(res.api.by_kind), res.api
    assert res.steady_api is not None and res.steady_steps > 0, res.notes
    assert res.steady_api.reads == 0, res.steady_api.by_verb_resource
    # canaryd's own view, from its /metrics: one observation per due step it took (weight 2 … promotion,
    # plus any halted step), its writes timed as its tasks felt them
    assert res.own is not None and (res.own["steps"] or 0) >= 2 * res.steps, res.own
    assert (res.own["writes"] or 0) > 0 and res.own["write_p99_le"] is not None, res.own
    text = report.markdown(title="smoke", reaction=[res], scale=[res], setup="",
                           command="python3 -m bench --smoke", notes=[], plots=[])
    assert "| canaryd | 2 s | 2 of 2 |" in text and "| canaryd | 2 s | 2 | 2/2 |" in text
    assert "| Canary status update | " in text and "| **all writes** | " in text


def test_plan_and_flags() -> None:
    """The CLI's sizes become the planned runs; Flagger's are capped by --flagger-max."""
    args = run.parse_args(["--scale-sizes", "10,100", "--scale-intervals", "10", "--flagger-max", "10"])
    p = run.plan(args)
    assert p.reaction == [("canaryd", 10), ("flagger", 10)]
    assert p.scale == [("canaryd", 10, 10, 0), ("flagger", 10, 10, 0), ("canaryd", 10, 100, 0)]
    # --repeats: each cell again, the operators alternating (issue 16: neither always runs first)
    repeated = run.plan(run.parse_args(["--scale-sizes", "10", "--scale-intervals", "10", "--repeats", "3"]))
    assert repeated.scale == [("canaryd", 10, 10, 0), ("flagger", 10, 10, 0), ("flagger", 10, 10, 1),
                              ("canaryd", 10, 10, 1), ("canaryd", 10, 10, 2), ("flagger", 10, 10, 2)]
    smoke = run.parse_args(["--smoke"])
    assert run.plan(smoke) == run.Plan([("canaryd", 2)], [])
