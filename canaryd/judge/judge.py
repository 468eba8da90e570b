"""The judge: classified metrics -> score -> canaryd verdict, and the report kept in status
(docs/judge.md). Pure: the caller runs the range queries and hands in the samples or the error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from canaryd.judge.classify import MetricConfig, MetricResult, classify
from canaryd.judge.score import GroupScore, Summary, score, summary

Verdict = Literal["pass", "inconclusive", "fail", "nodata", "error"]
DEFAULT_PASS = 95.0  # Kayenta's usual canary thresholds (pass 95, marginal 75)
DEFAULT_MARGINAL = 75.0
_BY_SUMMARY: dict[Summary, Verdict] = {"Pass": "pass", "Marginal": "inconclusive", "Fail": "fail"}


@dataclass(frozen=True)
class Samples:
    """One metric's values per side over the step's window."""

    canary: tuple[float, ...]
    primary: tuple[float, ...]


@dataclass(frozen=True)
class QueryFailed:
    """One metric could not be measured (server down, timeout, bad answer): the metric is Error."""

    message: str


@dataclass(frozen=True)
class JudgeConfig:
    metrics: tuple[MetricConfig, ...]
    group_weights: Mapping[str, float] = field(default_factory=dict)
    pass_threshold: float = DEFAULT_PASS
    marginal_threshold: float = DEFAULT_MARGINAL


@dataclass(frozen=True)
class JudgeReport:
    metrics: tuple[MetricResult, ...]
    groups: tuple[GroupScore, ...]
    score: float
    summary: Summary  # Kayenta's label for the score
    verdict: Verdict  # canaryd's: Marginal is inconclusive; errors and too little data are said so
    pass_threshold: float
    marginal_threshold: float
    reason: str | None

    @property
    def message(self) -> str:
        return message(self)

    def to_dict(self) -> dict[str, Any]:
        thresholds = {"pass": self.pass_threshold, "marginal": self.marginal_threshold}
        out: dict[str, Any] = {"verdict": self.verdict, "score": self.score, "summary": self.summary,
                               "thresholds": thresholds,
                               "metrics": [m.to_dict() for m in self.metrics],
                               "groups": [g.to_dict() for g in self.groups], "message": self.message}
        if self.reason:
            out["reason"] = self.reason
        return out


def measure(cfg: MetricConfig, data: Samples | QueryFailed | None) -> MetricResult:
    """Classifies one metric; a failed query (or none at all) is Error, never a silent pass."""
    if isinstance(data, Samples):
        return classify(data.canary, data.primary, cfg)
    text = data.message if isinstance(data, QueryFailed) else "no query result"
    return MetricResult(name=cfg.name, classification="Error", reason=text, critical=False, groups=cfg.groups,
                        dry_run=cfg.dry_run, canary_count=0, primary_count=0)


def judge(cfg: JudgeConfig, data: Mapping[str, Samples | QueryFailed]) -> JudgeReport:
    """Kayenta's score and summary, then canaryd's verdict (docs/judge.md, "Verdict")."""
    results = tuple(measure(m, data.get(m.name)) for m in cfg.metrics)
    scored = score(results, cfg.group_weights)
    label = summary(scored.score, cfg.pass_threshold, cfg.marginal_threshold)
    verdict = _verdict(cfg, results, label, scored.critical_failures, scored.too_many_nodata)
    return JudgeReport(metrics=results, groups=scored.groups, score=scored.score, summary=label,
                       verdict=verdict, pass_threshold=cfg.pass_threshold,
                       marginal_threshold=cfg.marginal_threshold, reason=scored.reason)


def _verdict(cfg: JudgeConfig, results: Sequence[MetricResult], label: Summary,
             critical: Sequence[str], too_many_nodata: bool) -> Verdict:
    if critical:
        return "fail"
    if any(r.classification == "Error" and not r.dry_run for r in results):
        # fail stays fail if the unmeasured metrics could not have lifted it; otherwise say so
        best = [replace(r, classification="Pass") if r.classification == "Error" else r for r in results]
        best_score = score(best, cfg.group_weights)
        best_label = summary(best_score.score, cfg.pass_threshold, cfg.marginal_threshold)
        return "fail" if best_label == "Fail" and not best_score.too_many_nodata else "error"
    if too_many_nodata:
        return "nodata"
    return _BY_SUMMARY[label]


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def describe(m: MetricResult) -> str:
    """One metric in the check's message: ``latency-p99 High (canary/primary 1.31, p=0.0004)``."""
    name = f"{m.name} [dry run]" if m.dry_run else m.name
    if m.classification in ("High", "Low"):
        ratio = "n/a" if m.ratio is None else f"{m.ratio:.2f}"
        p = "n/a" if m.p_value is None else f"{m.p_value:.2g}"
        critical = ", critical" if m.critical else ""
        return f"{name} {m.classification} (canary/primary {ratio}, p={p}{critical})"
    return f"{name} {m.classification} ({m.reason})" if m.reason else f"{name} {m.classification}"


def message(r: JudgeReport) -> str:
    """``judge: score 62 (fail < 75): latency-p99 High (canary/primary 1.31, p=0.0004)``."""
    flagged = "; ".join(describe(m) for m in r.metrics if m.classification != "Pass")
    score = _number(r.score)
    if r.verdict == "error":
        head = "judge: could not measure"
    elif r.verdict == "nodata":
        nodata = sum(1 for m in r.metrics if m.classification == "Nodata" and not m.dry_run)
        scored = sum(1 for m in r.metrics if not m.dry_run)
        head = f"judge: no data for {nodata} of {scored} metrics"
    elif critical := [m.name for m in r.metrics
                      if m.critical and m.classification != "Pass" and not m.dry_run]:
        head = f"judge: score 0 (fail: critical {', '.join(critical)})"
    elif r.summary == "Pass":
        head = f"judge: score {score} (pass ≥ {_number(r.pass_threshold)})"
    elif r.summary == "Marginal":
        head = f"judge: score {score} (marginal < {_number(r.pass_threshold)})"
    else:
        head = f"judge: score {score} (fail < {_number(r.marginal_threshold)})"
    return f"{head}: {flagged}" if flagged else head
