"""The parsed ``analysis.judge`` (a canaryd extension, pruned by Flagger's CRD): the metrics the
statistical judge compares between canary and primary, and the range-query settings
(:mod:`canaryd.model.parse_judge` reads and checks it; docs/judge.md, "Using the judge")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from canaryd.judge.classify import DEFAULT_CONFIDENCE, DEFAULT_MIN_SAMPLES, Direction, MetricConfig
from canaryd.judge.judge import DEFAULT_MARGINAL, DEFAULT_PASS, JudgeConfig
from canaryd.model.spec import DEFAULT_POLICY, CheckPolicy

JSON = dict[str, Any]
NoData = Literal["ignore", "fail"]
DEFAULT_STEP = "1m"


@dataclass(frozen=True)
class JudgeMetricSpec:
    """One judged metric: a PromQL template rendered once per side (``{{ target }}`` = that side's
    workload, ``{{ interval }}`` = its rate window)."""

    name: str
    query: str
    direction: Direction = "either"
    tolerance: float = 0.0  # allowed relative change in the bad direction(s): 0.15 = +/-15 %
    weight: float | None = None  # its group's share of the score, in % (None: shares what is left)
    critical: bool = False
    group: str = ""  # "" = the metric's name
    nodata: NoData = "ignore"  # "fail": no data counts against its group (Kayenta's mustHaveData)
    dry_run: bool = False  # reported, never scored
    interval: str = ""  # the rate window rendered as {{ interval }} ("" = the judge's step)
    template_variables: JSON = field(default_factory=dict)
    preset: str = ""  # the Istio preset it came from ("" = a query of its own)

    @property
    def group_name(self) -> str:
        return self.group or self.name

    def config(self, confidence: float, min_samples: int) -> MetricConfig:
        up = 1 + self.tolerance if self.direction in ("increase", "either") else None
        down = 1 - self.tolerance if self.direction in ("decrease", "either") else None
        return MetricConfig(name=self.name, direction=self.direction, critical=self.critical,
                            must_have_data=self.nodata == "fail", allowed_increase=up, allowed_decrease=down,
                            confidence=confidence, min_samples=min_samples, groups=(self.group_name,),
                            dry_run=self.dry_run)


@dataclass(frozen=True)
class JudgeSpec:
    """``analysis.judge``: evaluated at every analysis step as one check named ``name``."""

    metrics: tuple[JudgeMetricSpec, ...]
    name: str = "judge"
    step: str = DEFAULT_STEP  # the range query's step, as written
    step_seconds: float = 60.0
    lookback_seconds: float = DEFAULT_MIN_SAMPLES * 60.0  # the range: the last this-many seconds
    min_samples: int = DEFAULT_MIN_SAMPLES
    confidence: float = DEFAULT_CONFIDENCE
    pass_threshold: float = DEFAULT_PASS
    marginal_threshold: float = DEFAULT_MARGINAL
    # canaryd's verdict options of the judge as one check (nodata, dryRun, consecutiveErrorLimit,
    # initialDelay: docs/verdicts.md); ``nodata: ignore`` lets the first steps of a run, before the
    # canary has minSamples points, pass uncounted
    policy: CheckPolicy = DEFAULT_POLICY

    def config(self) -> JudgeConfig:
        weights = {m.group_name: m.weight for m in self.metrics if m.weight is not None}
        return JudgeConfig(metrics=tuple(m.config(self.confidence, self.min_samples) for m in self.metrics),
                           group_weights=weights, pass_threshold=self.pass_threshold,
                           marginal_threshold=self.marginal_threshold)

    def interval_of(self, metric: JudgeMetricSpec) -> str:
        return metric.interval or self.step


