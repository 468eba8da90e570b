"""Scores classified metrics into 0-100 and a summary label, as Kayenta's ``WeightedSumScorer`` and
``ThresholdScoreClassifier`` do (docs/judge.md, "Scoring")."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from canaryd.judge.classify import MetricResult

Summary = Literal["Pass", "Marginal", "Fail"]
NODATA_PERCENT = 50  # this share of Nodata metrics or more scores 0


@dataclass(frozen=True)
class GroupScore:
    name: str
    score: float  # share of Pass among Pass/High/Low/NodataFailMetric, x100; 0 when there are none
    no_data: bool  # none of those: the group then counts as 100 in the summary
    counts: tuple[tuple[str, int], ...]  # classification -> metrics, sorted

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "score": self.score, "noData": self.no_data, "counts": dict(self.counts)}


@dataclass(frozen=True)
class ScoreResult:
    score: float
    groups: tuple[GroupScore, ...]
    reason: str | None  # why the score is 0 regardless of the groups
    critical_failures: tuple[str, ...]  # metric names
    too_many_nodata: bool


def group_score(name: str, labels: Sequence[str]) -> GroupScore:
    counts = Counter(labels)
    total = counts["Pass"] + counts["High"] + counts["Low"] + counts["NodataFailMetric"]
    score = 0.0 if total == 0 else counts["Pass"] / total * 100
    return GroupScore(name=name, score=score, no_data=total == 0, counts=tuple(sorted(counts.items())))


def round2(value: float) -> float:
    """Two decimals, half away from zero (Kayenta rounds with ``Precision.round(x, 2)``)."""
    return float(Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def summary_score(groups: Sequence[GroupScore], weights: Mapping[str, float]) -> float:
    """Weighted sum of the groups' scores; groups without a weight share what the weights leave of 100
    equally, and a group with no data counts as 100."""
    unweighted = {g.name for g in groups} - set(weights)
    share = (100 - sum(weights.values())) / len(unweighted) if unweighted else 0.0
    total = 0.0
    for g in groups:
        effective = 100.0 if g.no_data else g.score
        total += effective * (weights.get(g.name, share) / 100)
    return round2(total)


def score(results: Sequence[MetricResult], weights: Mapping[str, float]) -> ScoreResult:
    """The run's score; dry-run (Kayenta: muted) metrics are left out before anything is counted."""
    scored = [r for r in results if not r.dry_run]
    by_group: dict[str, list[str]] = {}
    for r in scored:
        for g in r.groups:
            by_group.setdefault(g, []).append(r.classification)
    groups = tuple(group_score(name, labels) for name, labels in by_group.items())
    critical = tuple(r.name for r in scored if r.critical and r.classification != "Pass")
    nodata = sum(1 for r in scored if r.classification == "Nodata")
    too_many = bool(scored) and nodata / len(scored) * 100 >= NODATA_PERCENT
    if critical:
        first = next(r for r in scored if r.name == critical[0])
        return ScoreResult(0.0, groups, f"Canary Failed: {first.reason}", critical, too_many)
    if too_many:
        return ScoreResult(0.0, groups, f"Canary Failed: {NODATA_PERCENT}% or more metrics returned NODATA",
                           critical, too_many)
    return ScoreResult(summary_score(groups, weights), groups, None, critical, too_many)


def summary(value: float, pass_threshold: float, marginal_threshold: float) -> Summary:
    if value >= pass_threshold:
        return "Pass"
    if value >= marginal_threshold:
        return "Marginal"
    return "Fail"
