"""The verdict algebra: what one analysis step's check results add up to (docs/verdicts.md).

Every check of a step (the rollout webhooks, the metrics, the judge) gives one of five verdicts:
``pass``, ``fail``, ``inconclusive``, ``error`` (could not measure) or ``nodata``. Each check's
:class:`~canaryd.model.spec.CheckPolicy` says whether its result counts:

* during the check's ``initialDelay`` from the start of the run, and for a ``dryRun`` check, nothing
  counts (the result is still recorded, with a note);
* an ``error`` counts as a failed check only from the ``consecutiveErrorLimit``-th error in a row (the
  streak per check is kept in status, so a restart does not forget it; any other verdict ends it);
* ``nodata`` counts as a failed check unless ``nodata: ignore``.

The step fails when one counted result is ``fail``, ``error`` or ``nodata`` (the first one names the
failure, in the order webhooks then metrics then the judge, as Flagger reports the first failure);
otherwise it is inconclusive when a counted result is ``inconclusive`` (the run waits for a person);
otherwise it passes. Pure: the engine's ``progressing`` module applies the outcome.

Other check kinds (the judge) come in as :class:`Measured` values with their own key and policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from canaryd.engine.types import CheckResult, HookResult, Verdict
from canaryd.gofmt import go_duration
from canaryd.model.spec import DEFAULT_POLICY, CanarySpec, CheckPolicy

StepOutcome = Literal["pass", "fail", "inconclusive"]
_FAILING = ("fail", "error", "nodata")


@dataclass(frozen=True)
class Measured:
    """One check's result in a step with what decides how it counts. ``key`` names the check's error
    streak in status: ``metric/<name>``, ``webhook/<name>`` or ``judge``."""

    key: str
    result: CheckResult
    policy: CheckPolicy = DEFAULT_POLICY
    shown: bool = True  # recorded in status.checks (webhooks only when they set verdict options)


@dataclass(frozen=True)
class StepVerdict:
    outcome: StepOutcome
    results: tuple[CheckResult, ...]  # every shown result, annotated (counted, note, dry_run)
    failure: CheckResult | None  # the first counted failing result
    inconclusive: tuple[CheckResult, ...]  # counted inconclusive results (when nothing failed)
    streaks: tuple[tuple[str, int], ...]  # error streaks after this step, sorted, zeros dropped


def hook_result(hook: HookResult) -> CheckResult:
    """A rollout webhook's answer as a check result: passed, answered no (``fail``) or not asked
    (``error``: transport, timeout, 3xx, 5xx, oversized answer)."""
    verdict: Verdict = "pass" if hook.passed else "error" if hook.error else "fail"
    return CheckResult(name=hook.name, verdict=verdict, message=hook.message, kind="webhook")


def step_measurements(spec: CanarySpec, hooks: Sequence[HookResult], checks: Sequence[CheckResult],
                      extra: Sequence[Measured] = ()) -> tuple[Measured, ...]:
    """The step's results in reporting order: rollout webhooks, metrics (in list order), then
    ``extra`` (the judge). Results are paired with their spec entry by position."""
    policies = {w.name: w.policy for w in spec.analysis.webhooks if w.type == "rollout"}
    out = [Measured(f"webhook/{h.name}", hook_result(h), policies.get(h.name, DEFAULT_POLICY),
                    shown=policies.get(h.name, DEFAULT_POLICY) != DEFAULT_POLICY) for h in hooks]
    metrics, judge = spec.analysis.metrics, spec.analysis.judge
    for i, c in enumerate(checks):
        policy = metrics[i].policy if i < len(metrics) and metrics[i].name == c.name else DEFAULT_POLICY
        if c.kind == "judge":  # run_checks puts the judge's result (analysis.judge) after the metrics
            policy = judge.policy if judge is not None else DEFAULT_POLICY
        out.append(Measured(f"{c.kind}/{c.name}" if c.kind != "judge" else "judge", c, policy))
    return (*out, *extra)


def judge_step(measured: Sequence[Measured], streaks: tuple[tuple[str, int], ...],
               elapsed: float | None) -> StepVerdict:
    """The outcome of one step. ``streaks``: status's error streaks before it; ``elapsed``: seconds since
    the run began (None when unknown: every initial delay is over)."""
    counts = dict(streaks)
    results: list[CheckResult] = []
    failure: CheckResult | None = None
    waiting: list[CheckResult] = []
    for m in measured:
        streak = counts.get(m.key, 0) + 1 if m.result.verdict == "error" else 0
        counts[m.key] = streak
        r = _annotate(m.result, m.policy, streak, elapsed)
        if m.shown:
            results.append(r)
        if not r.counted:
            continue
        if r.verdict in _FAILING and failure is None:
            failure = r
        elif r.verdict == "inconclusive":
            waiting.append(r)
    outcome: StepOutcome = "fail" if failure is not None else "inconclusive" if waiting else "pass"
    kept = tuple(sorted((k, n) for k, n in counts.items() if n > 0))
    return StepVerdict(outcome, tuple(results), failure, tuple(waiting) if failure is None else (), kept)


def _annotate(r: CheckResult, policy: CheckPolicy, streak: int, elapsed: float | None) -> CheckResult:
    delay = policy.initial_delay_seconds
    if delay > 0 and elapsed is not None and elapsed < delay:
        note = f"initial delay {go_duration(int(delay * 1e9))}: not counted"
        return replace(r, counted=False, note=note, dry_run=policy.dry_run)
    if policy.dry_run:
        return replace(r, counted=False, note="dry run: not counted", dry_run=True)
    limit = policy.consecutive_error_limit
    if r.verdict == "error" and limit > 1:
        if streak < limit:
            return replace(r, counted=False, note=f"error {streak} of {limit} in a row: not counted")
        return replace(r, note=f"error {streak} in a row (consecutiveErrorLimit {limit})")
    if r.verdict == "nodata" and policy.nodata == "ignore":
        return replace(r, counted=False, note="no data: ignored (nodata: ignore)")
    return replace(r, counted=True, note="", dry_run=False)
