"""Out-of-range judge settings are refused, naming the field (the Canary gets Valid=False with it)."""

from __future__ import annotations

import math

import pytest

from canaryd.judge.classify import MetricConfig
from canaryd.judge.judge import JudgeConfig
from canaryd.judge.presets import PRESETS, istio
from canaryd.judge.validate import problems


def one(**kw: object) -> JudgeConfig:
    return JudgeConfig(metrics=(MetricConfig(name="m", **kw),))  # type: ignore[arg-type]


def test_defaults_and_presets_are_valid() -> None:
    assert problems(one()) == []
    assert problems(JudgeConfig(metrics=tuple(istio(n).config for n in PRESETS))) == []


@pytest.mark.parametrize(("cfg", "message"), [
    (one(confidence=1.0), "judge.metrics[0].confidence 1 is out of range: must be strictly between 0 and 1"),
    (one(confidence=0.0), "judge.metrics[0].confidence 0 is out of range"),
    (one(confidence=math.nan), "judge.metrics[0].confidence nan is out of range"),
    (one(tolerance=-0.1), "judge.metrics[0].tolerance -0.1 is out of range: must be 0 or more"),
    (one(min_samples=1), "judge.metrics[0].minSamples 1 is out of range: must be 2 or more"),
    (one(groups=()), "judge.metrics[0].groups must name at least one group, none empty"),
    (one(allowed_increase=0.9), "judge.metrics[0].effectSize.allowedIncrease 0.9 is out of range for "
                                "meanRatio: must be at least 1"),
    (one(allowed_decrease=0.0), "judge.metrics[0].effectSize.allowedDecrease 0 is out of range for "
                                "meanRatio: must be above 0 and at most 1"),
    (one(allowed_decrease=1.2), "effectSize.allowedDecrease 1.2 is out of range"),
    (one(critical_increase=math.inf), "effectSize.criticalIncrease inf is out of range"),
    (one(effect_measure="cles", allowed_increase=1.5), "effectSize.allowedIncrease 1.5 is out of range for "
                                                       "cles: must be at least 0.5 and at most 1"),
    (one(effect_measure="cles", critical_decrease=0.6), "effectSize.criticalDecrease 0.6 is out of range"),
    (JudgeConfig(metrics=()), "judge.metrics must list at least one metric"),
    (JudgeConfig(metrics=(MetricConfig(name="a"), MetricConfig(name="a"))),
     "judge.metrics has 'a' more than once"),
    (JudgeConfig(metrics=(MetricConfig(name="a"),), pass_threshold=101.0),
     "judge.scoreThresholds.pass 101 is out of range: must be between 0 and 100"),
    (JudgeConfig(metrics=(MetricConfig(name="a"),), pass_threshold=70.0),
     "judge.scoreThresholds.marginal 75 is above pass 70"),
    (JudgeConfig(metrics=(MetricConfig(name="a"),), group_weights={"x": -1.0}),
     "judge.groupWeights.x -1 is out of range: must be 0 or more"),
    (JudgeConfig(metrics=(MetricConfig(name="a"),), group_weights={"x": 60.0, "y": 50.0}),
     "judge.groupWeights add up to 110: must be at most 100"),
])
def test_out_of_range(cfg: JudgeConfig, message: str) -> None:
    got = problems(cfg)
    assert len(got) == 1 and message in got[0], got


def test_valid_edges() -> None:
    assert problems(one(allowed_increase=1.0, allowed_decrease=1.0, tolerance=0.0, min_samples=2)) == []
    assert problems(one(effect_measure="cles", allowed_increase=1.0, allowed_decrease=0.0)) == []
