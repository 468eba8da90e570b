"""Independent samples (step >= rate window) and the Istio presets rendered as canaryd renders queries."""

from __future__ import annotations

import pytest

from canaryd.analysis.query_template import TemplateVars, render
from canaryd.judge import presets
from canaryd.judge.samples import WindowError, range_windows_ms, step_error


@pytest.mark.parametrize(("query", "windows"), [
    ("rate(x[5m])", [300_000]),
    ("sum(rate(x[1h30m])) / sum(rate(y[30s]))", [5_400_000, 30_000]),
    ("max_over_time(rate(x[1m])[10m:30s])", [60_000, 600_000]),  # a subquery's range counts, not its step
    ('rate(x{path=~"/a[0-9]+"}[2m])', [120_000]),  # brackets inside a string are not windows
    ("rate(x[5m]) # [1h]", [300_000]),  # nor in a comment
    ("up", []),
    ("rate(x[ 5m ])", [300_000]),
    ("rate(x[500ms])", [500]),
])
def test_windows(query: str, windows: list[int]) -> None:
    assert range_windows_ms(query) == windows


@pytest.mark.parametrize("query", ["rate(x[{{ interval }}])", "rate(x[5])", "rate(x[])"])
def test_a_window_that_is_not_a_duration_is_refused(query: str) -> None:
    with pytest.raises(WindowError, match="is not a PromQL duration"):
        range_windows_ms(query)


@pytest.mark.parametrize(("query", "step_ms", "error"), [
    ("rate(x[1m])", 60_000, None),
    ("rate(x[1m])", 120_000, None),
    ("up", 1_000, None),
    ("rate(x[2m])", 60_000, "the query's step 1m is shorter than its rate window 2m: samples would overlap; "
                            "use a step of at least 2m"),
    ("rate(x[90s])", 30_000, "the query's step 30s is shorter than its rate window 90s"),
    ("rate(x[{{ interval }}])", 60_000, "range window [{{ interval }}] is not a PromQL duration"),
])
def test_step_against_window(query: str, step_ms: int, error: str | None) -> None:
    got = step_error(query, step_ms)
    if error is None:
        assert got is None
    else:
        assert got is not None and got.startswith(error)


def values(target: str) -> TemplateVars:
    return TemplateVars(name="podinfo", namespace="test", target=target, service="podinfo", interval="30s")


@pytest.mark.parametrize("name", presets.PRESETS)
@pytest.mark.parametrize("seconds", [False, True])
def test_presets_render_per_side_with_independent_samples(name: str, seconds: bool) -> None:
    preset = presets.istio(name, seconds_buckets=seconds)
    canary, primary = render(preset.query, values("podinfo")), render(preset.query, values("podinfo-primary"))
    assert 'destination_workload=~"podinfo"' in canary
    assert 'destination_workload=~"podinfo-primary"' in primary
    assert 'destination_workload_namespace="test"' in canary
    assert range_windows_ms(canary) and step_error(canary, 30_000) is None
    assert step_error(canary, 15_000) is not None


def test_preset_directions_and_tolerances() -> None:
    sr = presets.istio(presets.SUCCESS_RATE)
    assert (sr.config.direction, sr.config.effect_thresholds()) == ("decrease", (0.99, 1.0))
    assert "istio_requests_total" in sr.query and 'response_code!~"5.*"' in sr.query
    for name, q in ((presets.LATENCY_P50, "0.5"), (presets.LATENCY_P99, "0.99")):
        p = presets.istio(name)
        assert p.config.direction == "increase"
        assert p.config.effect_thresholds()[1] == presets.LATENCY_ALLOWED_INCREASE
        assert p.query.startswith(f"histogram_quantile({q}, ")
        assert "istio_request_duration_milliseconds_bucket" in p.query
    old = presets.istio(presets.LATENCY_P99, seconds_buckets=True)
    assert "istio_request_duration_seconds_bucket" in old.query and old.query.endswith(" * 1000")


def test_unknown_preset() -> None:
    with pytest.raises(KeyError, match="no judge preset 'nope'"):
        presets.istio("nope")
