"""Classifies one metric, canary against primary, as Kayenta's ``MannWhitneyClassifier`` does
(docs/judge.md, "Classification"): Pass, High, Low, Nodata, NodataFailMetric or Error."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from canaryd.judge.mannwhitney import AllTiedError, mann_whitney, p_value, u_statistic

Direction = Literal["increase", "decrease", "either"]  # which change is bad
Label = Literal["Pass", "High", "Low", "Nodata", "NodataFailMetric", "Error"]
EffectMeasure = Literal["meanRatio", "cles"]
NanStrategy = Literal["remove", "replace"]

DIRECTIONS: tuple[Direction, ...] = ("increase", "decrease", "either")
DEFAULT_CONFIDENCE = 0.98  # NetflixACAJudge's
DEFAULT_TOLERANCE = 0.25  # NetflixACAJudge's: bounds are +-25 % of the Hodges-Lehmann estimate
DEFAULT_MIN_SAMPLES = 20  # canaryd's (Kayenta has none): see docs/judge.md, "Samples"


@dataclass(frozen=True)
class MetricConfig:
    """One judged metric's classification settings; field names follow Kayenta's canary config."""

    name: str
    direction: Direction = "either"
    critical: bool = False
    must_have_data: bool = False
    nan_strategy: NanStrategy = "remove"
    effect_measure: EffectMeasure = "meanRatio"
    allowed_increase: float | None = None  # None: no tolerance (1.0 for meanRatio, 0.5 for cles)
    allowed_decrease: float | None = None
    critical_increase: float | None = None
    critical_decrease: float | None = None
    confidence: float = DEFAULT_CONFIDENCE
    tolerance: float = DEFAULT_TOLERANCE
    min_samples: int = DEFAULT_MIN_SAMPLES
    groups: tuple[str, ...] = ("default",)
    dry_run: bool = False  # Kayenta's "muted": reported, never scored

    def _default_effect(self) -> float:
        return 0.5 if self.effect_measure == "cles" else 1.0

    def effect_thresholds(self) -> tuple[float, float]:
        """(allowed decrease, allowed increase)."""
        d = self._default_effect()
        return (d if self.allowed_decrease is None else self.allowed_decrease,
                d if self.allowed_increase is None else self.allowed_increase)

    def critical_thresholds(self) -> tuple[float, float]:
        d = self._default_effect()
        return (d if self.critical_decrease is None else self.critical_decrease,
                d if self.critical_increase is None else self.critical_increase)


@dataclass(frozen=True)
class MetricResult:
    """What the judge found for one metric; every number is None where it was not computed."""

    name: str
    classification: Label
    reason: str | None
    critical: bool  # a critical metric whose classification fails the run whatever the score
    groups: tuple[str, ...]
    dry_run: bool
    canary_count: int
    primary_count: int
    canary_median: float | None = None
    primary_median: float | None = None
    ratio: float | None = None  # mean(canary) / mean(primary), Kayenta's "ratio"; None when undefined
    effect_size: float | None = None
    u: float | None = None
    p_value: float | None = None
    lower: float | None = None  # confidence interval for the shift canary - primary
    upper: float | None = None
    estimate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "classification": self.classification,
                               "samples": {"canary": self.canary_count, "primary": self.primary_count}}
        if self.reason:
            out["reason"] = self.reason
        if self.critical:
            out["critical"] = True
        if self.dry_run:
            out["dryRun"] = True
        for key, value in (("canaryMedian", self.canary_median), ("primaryMedian", self.primary_median),
                           ("ratio", self.ratio), ("effectSize", self.effect_size), ("u", self.u),
                           ("pValue", self.p_value), ("estimate", self.estimate)):
            if value is not None:
                out[key] = value
        if self.lower is not None and self.upper is not None:
            out["interval"] = [self.lower, self.upper]
        return out


def mean_ratio(canary: Sequence[float], primary: Sequence[float]) -> float | None:
    """mean(canary) / mean(primary); None (Kayenta's NaN) when either mean is 0."""
    c, p = statistics.fmean(canary), statistics.fmean(primary)
    return None if c == 0 or p == 0 else c / p


def cles(canary: Sequence[float], primary: Sequence[float]) -> float:
    """Common-language effect size: share of pairs where the canary is higher, ties counted half."""
    return u_statistic(canary, primary) / (len(canary) * len(primary))


def clean(values: Sequence[float], strategy: NanStrategy) -> list[float]:
    """NaN (and, in canaryd, infinities: Prometheus's +Inf quantile) removed or replaced by 0."""
    if strategy == "remove":
        return [v for v in values if math.isfinite(v)]
    return [v if math.isfinite(v) else 0.0 for v in values]


def classify(canary: Sequence[float], primary: Sequence[float], cfg: MetricConfig) -> MetricResult:
    """Kayenta's classification of one metric (docs/judge.md, "Classification")."""
    c, p = clean(canary, cfg.nan_strategy), clean(primary, cfg.nan_strategy)
    base: dict[str, Any] = {"name": cfg.name, "groups": cfg.groups, "dry_run": cfg.dry_run,
            "canary_count": len(c), "primary_count": len(p)}
    if not c or not p or min(len(c), len(p)) < cfg.min_samples:
        return _no_data(cfg, base, len(c), len(p))
    stats: dict[str, Any] = {"canary_median": statistics.median(c), "primary_median": statistics.median(p),
             "ratio": mean_ratio(c, p)}
    if sorted(c) == sorted(p):
        return MetricResult(classification="Pass", reason="the canary and primary data are identical",
                            critical=False, **base, **stats)
    if len(set(c) | set(p)) == 1:  # not reached after the check above; kept as Kayenta orders them
        return MetricResult(classification="Pass", reason=None, critical=False,
                            **base, **stats)
    effect = stats["ratio"] if cfg.effect_measure == "meanRatio" else cles(c, p)
    if len(set(c)) == 1 and len(set(p)) == 1:
        # Kayenta adds Gaussian noise of 1e-5 x the value to both sides; the shift then decides alone
        shift = c[0] - p[0]
        lower = upper = estimate = shift
        u, pv = u_statistic(c, p), p_value(c, p)
    else:
        try:
            mw = mann_whitney(c, p, cfg.confidence)
        except AllTiedError as e:  # pragma: no cover - excluded by the checks above
            return MetricResult(classification="Error", reason=str(e), critical=False,
                                **base, **stats)
        lower, upper, estimate, u, pv = mw.lower, mw.upper, mw.estimate, mw.u, mw.p_value
    label = _compare(lower, upper, estimate, effect, cfg)
    critical = cfg.critical and _critical_failure(label, effect, cfg)
    reason = None
    if label != "Pass":
        reason = f"{cfg.name} was classified as {label}" + (" (Critical)" if critical else "")
    return MetricResult(classification=label, reason=reason, critical=critical, effect_size=effect, u=u,
                        p_value=pv, lower=lower, upper=upper, estimate=estimate,
                        **base, **stats)


def _compare(lower: float, upper: float, estimate: float, effect: float | None,
             cfg: MetricConfig) -> Label:
    bound = cfg.tolerance * abs(estimate)
    allowed_decrease, allowed_increase = cfg.effect_thresholds()
    if (cfg.direction in ("increase", "either") and lower > bound
            and (effect is None or effect >= allowed_increase)):
        return "High"
    if (cfg.direction in ("decrease", "either") and upper < -bound
            and (effect is None or effect <= allowed_decrease)):
        return "Low"
    return "Pass"


def _critical_failure(label: Label, effect: float | None, cfg: MetricConfig) -> bool:
    critical_decrease, critical_increase = cfg.critical_thresholds()
    if label == "High":
        return effect is None or effect >= critical_increase
    if label == "Low":
        return effect is None or effect <= critical_decrease
    return False


def _no_data(cfg: MetricConfig, base: dict[str, Any], nc: int, np_: int) -> MetricResult:
    if nc and np_:
        reason = f"too few samples for {cfg.name}: canary {nc}, primary {np_}, need {cfg.min_samples}"
    else:
        reason = f"Missing data for {cfg.name}: canary {nc}, primary {np_} samples"
    if cfg.nan_strategy == "replace" and (not nc or not np_):  # Kayenta passes an empty metric then
        return MetricResult(classification="Pass", reason=None, critical=False, **base)
    if cfg.must_have_data and not cfg.critical:
        return MetricResult(classification="NodataFailMetric", reason=reason, critical=False, **base)
    return MetricResult(classification="Nodata", reason=reason, critical=cfg.critical, **base)
