"""Range checks of a judge's settings, each naming its field, so a bad Canary gets ``Valid=False`` with
the field instead of a verdict computed from nonsense (``metrics[1].confidence 1.5 is out of range …``)."""

from __future__ import annotations

import math

from canaryd.judge.classify import MetricConfig
from canaryd.judge.judge import JudgeConfig


def _bad(value: float) -> bool:
    return not math.isfinite(value)


def metric_problems(m: MetricConfig, field: str) -> list[str]:
    out: list[str] = []
    if _bad(m.confidence) or not 0 < m.confidence < 1:
        out.append(f"{field}.confidence {m.confidence:g} is out of range: must be strictly between 0 and 1")
    if _bad(m.tolerance) or m.tolerance < 0:
        out.append(f"{field}.tolerance {m.tolerance:g} is out of range: must be 0 or more")
    if m.min_samples < 2:
        out.append(f"{field}.minSamples {m.min_samples} is out of range: must be 2 or more")
    if not m.groups or any(not g for g in m.groups):
        out.append(f"{field}.groups must name at least one group, none empty")
    # (lowest, lowest allowed?, highest) per measure and side: an allowance never points the wrong way
    ranges = {("meanRatio", True): (1.0, True, math.inf), ("meanRatio", False): (0.0, False, 1.0),
              ("cles", True): (0.5, True, 1.0), ("cles", False): (0.0, True, 0.5)}
    for name, value, increase in (("allowedIncrease", m.allowed_increase, True),
                                  ("allowedDecrease", m.allowed_decrease, False),
                                  ("criticalIncrease", m.critical_increase, True),
                                  ("criticalDecrease", m.critical_decrease, False)):
        if value is None:
            continue
        low, closed, high = ranges[(m.effect_measure, increase)]
        if _bad(value) or value > high or value < low or (value == low and not closed):
            rule = (f"at least {low:g}" if closed else f"above {low:g}") + (
                f" and at most {high:g}" if math.isfinite(high) else "")
            out.append(f"{field}.effectSize.{name} {value:g} is out of range for {m.effect_measure}: "
                       f"must be {rule}")
    return out


def problems(cfg: JudgeConfig, field: str = "judge") -> list[str]:
    """Every out-of-range setting, as ``<field path> <value> is out of range: <rule>``; empty when valid."""
    out: list[str] = []
    if not cfg.metrics:
        out.append(f"{field}.metrics must list at least one metric")
    names = [m.name for m in cfg.metrics]
    for name in sorted({n for n in names if names.count(n) > 1}):
        out.append(f"{field}.metrics has {name!r} more than once")
    for i, m in enumerate(cfg.metrics):
        out.extend(metric_problems(m, f"{field}.metrics[{i}]"))
    for name, value in (("pass", cfg.pass_threshold), ("marginal", cfg.marginal_threshold)):
        if _bad(value) or not 0 <= value <= 100:
            out.append(f"{field}.scoreThresholds.{name} {value:g} is out of range: must be between 0 and 100")
    if cfg.marginal_threshold > cfg.pass_threshold:
        out.append(f"{field}.scoreThresholds.marginal {cfg.marginal_threshold:g} is above pass "
                   f"{cfg.pass_threshold:g}")
    for group, weight in sorted(cfg.group_weights.items()):
        if _bad(weight) or weight < 0:
            out.append(f"{field}.groupWeights.{group} {weight:g} is out of range: must be 0 or more")
    total = sum(w for w in cfg.group_weights.values() if math.isfinite(w))
    if total > 100:
        out.append(f"{field}.groupWeights add up to {total:g}: must be at most 100")
    return out
