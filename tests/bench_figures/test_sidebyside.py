"""The side-by-side report (bench/sidebyside.py) and the profile folding (bench/profiling.py): medians and
ranges per operator, the ratio verdict at 1.0, the alternating order, and frames counted self/inclusive."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import apicost, curve, profiling, sidebyside
from bench.run import degraded_below
from bench.scenario import RunResult


def run(op: str, cpu: float, *, n: int = 10, interval: int = 10, window: float = 60.0, writes: int = 100,
        api_cpu: float = 5.0, idle: float | None = None) -> RunResult:
    r = RunResult(op, n, interval, 2, 1, expected=n)
    r.cpu_per_min, r.window_seconds, r.apiserver_cpu_per_min = cpu, window, api_cpu
    r.api = apicost.Cost(reads=0, writes=writes, watches=0, by_verb_resource={})
    r.idle_cpu_per_min = idle
    return r


def test_cells_report_median_range_and_the_ratio_of_medians() -> None:
    results = [run("canaryd", 1.0), run("flagger", 2.0), run("flagger", 1.0), run("canaryd", 3.0),
               run("canaryd", 2.0), run("flagger", 4.0)]
    text = sidebyside.table(results)
    row = next(line for line in text.splitlines() if "operator CPU s/min" in line)
    assert "| 2.00 [1.00–3.00] (3 runs) | 2.00 [1.00–4.00] (3 runs) | 1.00 (met) |" in row
    # CPU ms per canary step: 2 CPU s/min over 60 s = 2 s over 10 canaries × 2 steps = 100 ms
    step = next(line for line in text.splitlines() if "CPU ms per canary step" in line)
    assert "| 100.0 [50.0–150.0] (3 runs) |" in step
    # the API server's 5 CPU s/min over 60 s = 5 s over 20 canary steps = 250 ms, for either operator
    api = next(line for line in text.splitlines() if "API-server CPU ms per canary step" in line)
    assert "| 250.0 [250.0–250.0] (3 runs) | 250.0 [250.0–250.0] (3 runs) | 1.00 (met) |" in api


@pytest.mark.parametrize(("ours", "theirs", "text"), [
    (1.0, 1.0, "1.00 (met)"), (1.1, 1.0, "1.10 (missed)"), (0.5, 2.0, "0.25 (met)"),
    (None, 1.0, "–"), (1.0, None, "–"), (1.0, 0.0, "–")])
def test_ratio_verdict(ours: float | None, theirs: float | None, text: str) -> None:
    assert sidebyside.ratio_text(ours, theirs) == text


def test_a_cell_without_both_operators_is_left_out_and_missing_figures_show_a_dash() -> None:
    assert sidebyside.table([run("canaryd", 1.0)]) == ""
    text = sidebyside.table([run("canaryd", 1.0, idle=0.2), run("flagger", 1.0)])
    idle = next(line for line in text.splitlines() if "idle CPU" in line)
    assert "| 0.200 (1 run) | – | – |" in idle


def test_operators_alternate_between_repeats() -> None:
    assert [sidebyside.order(["canaryd", "flagger"], k) for k in range(3)] == [
        ["canaryd", "flagger"], ["flagger", "canaryd"], ["canaryd", "flagger"]]


@pytest.mark.parametrize(("op", "interval", "n", "skipped_because"), [
    ("flagger", 10, 500, None),    # the degraded cell's own repeats still run: its median needs them
    ("flagger", 10, 1000, 500),    # N grows no further past the degraded one
    ("flagger", 10, 100, None),    # a smaller N is not affected
    ("flagger", 60, 1000, None),   # nor another interval
    ("canaryd", 10, 1000, None),   # nor the other operator
])
def test_a_degraded_cell_still_runs_its_repeats_but_n_grows_no_further(
        op: str, interval: int, n: int, skipped_because: int | None) -> None:
    assert degraded_below({("flagger", 10): 500}, op, interval, n) == skipped_because


def test_profile_folding_counts_self_and_inclusive_once_per_stack(tmp_path: Path) -> None:
    raw = tmp_path / "p.txt"
    raw.write_text(
        "main (a/cli.py:1);run (canaryd/runtime/task.py:10);parse (canaryd/model/parse.py:5) 7\n"
        "main (a/cli.py:1);run (canaryd/runtime/task.py:12);run (canaryd/runtime/task.py:12) 2\n"
        "main (a/cli.py:1);select (selectors.py:468) 1\n")
    prof = profiling.fold(raw)
    assert prof.samples == 10
    assert dict(prof.top_self) == {"parse (parse.py)": 7, "run (task.py)": 2, "select (selectors.py)": 1}
    inclusive = dict(prof.top_inclusive)
    assert inclusive["main (cli.py)"] == 10 and inclusive["run (task.py)"] == 9  # recursion counted once
    table = "\n".join(profiling.markdown("canaryd", prof))
    assert "| `parse (parse.py)` | 70.0 % | 70.0 % |" in table


def test_the_scale_curve_takes_medians_per_n_and_fits_a_line() -> None:
    results = [run("canaryd", 1.0, n=10), run("canaryd", 3.0, n=10), run("canaryd", 2.0, n=10),
               run("canaryd", 20.0, n=100), run("flagger", 9.0, n=100)]
    for r, rss, late in zip(results, (50.0, 52.0, 54.0, 70.0, 80.0), ([0.1], [0.2], [0.3], [1.0, 2.0], [5.0]),
                            strict=True):
        r.peak_rss_mib, r.lateness = rss, late
    pts = curve.points(results, "canaryd", 10)
    assert [(p.n, p.runs, p.cpu_ms_per_step, p.rss_mib) for p in pts] == [(10, 3, 100.0, 52.0),
                                                                       (100, 1, 100.0, 70.0)]
    assert pts[0].lateness_p50 == 0.2 and pts[1].lateness_p99 == 2.0
    line = curve.fit([(10, 52.0), (100, 70.0)])
    assert line is not None and round(line.b, 3) == 0.2 and round(line(10), 6) == 52.0
    assert curve.fit([(10, 1.0), (10, 2.0)]) is None
    text = "\n".join(curve.markdown(results, "canaryd", 10))
    assert "RSS ≈ 50 MiB + 204.8 KiB × N" in text and "| 100 | 1 | 0/100 |" in text


def test_events_are_split_from_the_writes_and_events_logged_but_never_written_are_counted() -> None:
    """Flagger logs each Event it records; the audit log shows which reached the API server. A run where it
    logged 7 per canary and wrote 1 reads 6 lost; canaryd (no log count) reads a dash; writes without Events
    compare what the two changed."""
    kinds = {"Canary status update": 60, "VirtualService patch": 30, "Deployment target patch": 20,
             "Deployment primary patch": 10}
    ours = run("canaryd", 1.0, writes=190)
    ours.api = apicost.Cost(0, 190, 0, {}, {**kinds, "Event create": 70})
    ours.tail_seconds, ours.tail_writes = 5.0, 0
    theirs = run("flagger", 1.0, writes=130)
    theirs.api = apicost.Cost(0, 130, 0, {}, {**kinds, "Event create": 8, "Event patch": 2})
    theirs.tail_seconds, theirs.tail_writes, theirs.events_logged = 6.0, 4, 70
    text = sidebyside.table([ours, theirs]).splitlines()
    assert "| 12.0 (1 run) | 12.0 (1 run) | 1.00 (met) |" in next(x for x in text if "Events left out" in x)
    assert "| – | 6.0 (1 run) | – |" in next(x for x in text if "never written" in x)
    assert "| 0.0 (1 run) | 0.4 (1 run) | 0.00 (met) |" in next(x for x in text if "after the round" in x)
    assert "| 19.0 (1 run) | 13.0 (1 run) | 1.46 (missed) |" in next(
        x for x in text if "| API writes per canary run |" in x)


def test_a_round_and_its_tail_add_up() -> None:
    window = apicost.Cost(5, 3, 1, {"get canaries": 5, "patch virtualservices": 3},
                          {"VirtualService patch": 3})
    tail = apicost.Cost(0, 2, 0, {"create events": 2}, {"Event create": 2})
    both = window.plus(tail)
    assert (both.reads, both.writes, both.watches) == (5, 5, 1)
    assert both.by_verb_resource == {"get canaries": 5, "patch virtualservices": 3, "create events": 2}
    assert both.by_kind == {"VirtualService patch": 3, "Event create": 2}
