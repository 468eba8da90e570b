"""The vocabulary of the pure decision core: what it reads (status, snapshot, check results) and what
it returns (next status, actions, when to wake up). No I/O, no clocks: ``now`` is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from canaryd.model import defaults
from canaryd.model.routes import Cookies, Routes
from canaryd.model.spec import AlertSeverity, HookType

# a check's outcome in one step (docs/verdicts.md): measured and passed or failed, measured within an
# inconclusive range (a person decides), could not be measured (``error``), or nothing to measure
Verdict = Literal["pass", "fail", "error", "nodata", "inconclusive"]
# the alert sent with an Event ("" = none); AlertProviders filter on it (canaryd.notify.rules)
Severity = AlertSeverity


class Phase(StrEnum):
    INITIALIZING = "Initializing"
    INITIALIZED = "Initialized"
    WAITING = "Waiting"
    PROGRESSING = "Progressing"
    WAITING_PROMOTION = "WaitingPromotion"
    PROMOTING = "Promoting"
    FINALISING = "Finalising"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    TERMINATED = "Terminated"


@dataclass(frozen=True)
class CheckResult:
    """One measurement of one check in one step (also stored in status so users see the figures)."""

    name: str
    verdict: Verdict
    value: float | None = None
    threshold: str = ""  # human form, e.g. ">= 99" or "<= 500ms"
    # Event text when not passed. For "fail" without the "Halt C.N advancement " prefix, which the
    # engine adds (e.g. "success rate 69.17% < 99%"); a message that already starts with "Halt " and
    # every "error"/"nodata" message is used verbatim (Flagger's texts for those have other shapes,
    # e.g. "Halt advancement no values found for istio metric ..." or "Prometheus query failed: ...").
    message: str = ""
    # set by the engine's verdict algebra (engine/verdicts.py) for status: whether this result counted
    # towards the step's outcome, why not (or how), and whether the check is a dry run
    counted: bool = True
    note: str = ""  # e.g. "dry run: not counted", "error 1 of 3 in a row: not counted"
    dry_run: bool = False
    kind: str = "metric"  # "metric", "webhook" (a rollout webhook with verdict options) or "judge"
    # the judge's report (canaryd.judge.judge.JudgeReport.to_dict(): per metric samples, medians, ratio,
    # U, p-value, classification; score, verdict), kept in status as ``checks[].judge``
    report: dict[str, Any] | None = None


@dataclass(frozen=True)
class HookResult:
    """The outcome of one webhook call (see ``RunHooks`` for the protocol)."""

    name: str  # the webhook's name in the spec
    passed: bool  # HTTP status <= 202 (Flagger's rule)
    message: str = ""  # error text or response body when not passed
    # not passed because the hook could not be asked (transport error, timeout, 3xx, 5xx, oversized
    # answer) rather than because it answered no (4xx): the verdict ``error`` (engine/verdicts.py)
    error: bool = False


@dataclass(frozen=True)
class CanaryStatus:
    """Everything needed to continue a run after a restart. Serialised to ``.status`` by
    :func:`canaryd.engine.status.status_to_dict` / read by ``status_from_dict``; Flagger's field names
    where Flagger has one, canaryd's own fields otherwise."""

    phase: Phase | None = None
    canary_weight: int = 0
    failed_checks: int = 0
    iterations: int = 0
    last_applied_spec: str = ""
    last_promoted_spec: str = ""
    tracked_configs: tuple[tuple[str, str], ...] = ()  # sorted ("configmap/x", checksum) pairs
    last_transition_time: float | None = None  # wall clock (epoch seconds)
    conditions: tuple[dict[str, Any], ...] = ()
    # canaryd's own durable scheduling fields (wall clock, epoch seconds)
    next_step_at: float | None = None  # when the next analysis step is due
    waiting_since: float | None = None  # when the current wait for a rollout began (progress deadline)
    checks: tuple[CheckResult, ...] = ()  # measurements of the last analysis step
    message: str = ""  # last reason shown to users (invalid spec, readiness, halt)
    observed_generation: int = 0
    mirrored: bool = False  # the current step mirrors traffic to the canary (canary strategy: first step)
    # the generation whose accepted-without-effect fields were named in a Warning Event (once each)
    ignored_fields_generation: int = 0
    # Flagger's session-affinity status fields ("name=value"; "" = absent), set by engine/cookies.py
    session_affinity_cookie: str = ""
    primary_session_affinity_cookie: str = ""
    previous_session_affinity_cookie: str = ""
    # operating by hand (engine/requests.py): the last request answered, and a pause by request
    last_request: LastRequest | None = None
    paused_by: str = ""  # the id of the pause request in force ("" = not paused)
    promote_requested: bool = False  # a promote request skipped the rest of this run's analysis
    # the current run (engine/history.py): when it began, the target's first image, per-step weights
    run_started_at: float | None = None
    run_image: str = ""
    weights: tuple[tuple[float, int], ...] = ()  # (at, weight), at most history.MAX_WEIGHTS
    # each analysis step's checks (name, value, verdict), at most history.MAX_CHECK_STEPS
    step_checks: tuple[StepChecks, ...] = ()
    history: tuple[RunRecord, ...] = ()  # ended runs, newest first, at most history.MAX_RUNS
    # the verdict algebra (engine/verdicts.py): errors in a row per check key ("metric/<name>",
    # "webhook/<name>", "judge"), sorted; and when the run began to wait on inconclusive checks
    error_streaks: tuple[tuple[str, int], ...] = ()
    inconclusive_since: float | None = None
    # the target's metadata.generation when a phase at rest was decided with its scale-to-zero (0 = none):
    # while the target still has that generation and replicas, the scale was lost (a crash after the
    # status write) and is done again; any later change of the target (our scale, a manual one) moves its
    # generation on, so a manual scale at rest is left alone (engine/at_rest.py)
    scale_down_generation: int = 0


@dataclass(frozen=True)
class StepChecks:
    """One entry of ``status.stepChecks``: the checks of one analysis step of the current run, measured
    at ``weight`` (thresholds and messages are in ``status.checks``)."""

    at: float
    weight: int
    checks: tuple[CheckResult, ...]


@dataclass(frozen=True)
class LastRequest:
    """``status.lastRequest``: the answer to the ``canaryd.io/request`` annotation with this id."""

    id: str
    action: str
    result: Literal["done", "refused", "ignored"]
    message: str
    at: float


@dataclass(frozen=True)
class RunRecord:
    """One entry of ``status.history``: a run that ended."""

    revision: str
    image: str
    started_at: float | None
    ended_at: float
    outcome: Literal["promoted", "rolled back", "aborted", "superseded"]
    reason: str
    max_weight: int
    failed_checks: tuple[CheckResult, ...] = ()
    judge: dict[str, Any] | None = None  # the judge's last report in the run, shortened (engine/history.py)


@dataclass(frozen=True)
class DeploymentView:
    """What decisions need of a Deployment (taken from the watch cache)."""

    name: str
    generation: int
    observed_generation: int
    spec_replicas: int
    status_replicas: int
    updated_replicas: int
    available_replicas: int
    ready_replicas: int
    template_hash: str  # canaryd's stable hash of .spec.template (engine.revision)
    conditions: tuple[dict[str, Any], ...] = ()  # raw .status.conditions
    selector_label: str | None = None  # first of the selector labels present in matchLabels
    selector_value: str | None = None
    image: str = ""  # the first container's image (run history)


@dataclass(frozen=True)
class Snapshot:
    """The cached objects one canary depends on, at one moment."""

    target: DeploymentView | None
    primary: DeploymentView | None
    config_checksums: tuple[tuple[str, str], ...] = ()  # tracked configs of the target, sorted
    config_error: str | None = None  # e.g. a mandatory ConfigMap missing
    hpa_min_replicas: int | None = None
    hpa_exists: bool = False
    routes: tuple[int, int] | None = None  # observed (primary, canary) weights in the VirtualService
    primary_template_matches_target: bool | None = None  # for takeover of foreign (Flagger) hashes
    duplicate_of: str | None = None  # another canary already targets this Deployment
    mirrored: bool | None = None  # observed mirror on the VirtualService route (None = unknown)
    selector_labels: tuple[str, ...] = defaults.SELECTOR_LABELS  # for messages
    # a referenced MetricTemplate canaryd cannot run (canaryd.model.template_refs): refuses a new run
    template_error: str | None = None
    request: str | None = None  # the raw ``canaryd.io/request`` annotation (engine/requests.py)


# ---- actions: intents the runtime carries out, in order, after writing the new status ----
# Each carries everything its writer needs; the fields marked ``compare=False`` are derived from the
# decided status by engine/desired.py when the decision is finished (routes with cookies, the promotion
# id, the webhook checksum and phase), so tables compare the decision's shape, and tests of
# engine/desired.py the derived values.


@dataclass(frozen=True)
class EnsurePrimary:
    """Create ``<target>-primary`` (and ``-primary`` config copies) if absent."""


@dataclass(frozen=True)
class EnsureServicesAndRouting:
    """Create/update canary+primary Services, DestinationRules, VirtualService (weights from status);
    the apex Service only when ``apex``; the primary HPA when an autoscaler is set. ``routes``: the
    VirtualService's routes (those status implies), present when ``apex``."""

    apex: bool = True
    routes: Routes | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ScaleTarget:
    replicas: int


@dataclass(frozen=True)
class SetRoutes:
    """Move traffic: ``primary`` + ``canary`` = 100; ``cookies`` the session-affinity routes."""

    primary: int
    canary: int
    mirror: bool = False
    cookies: Cookies | None = field(default=None, compare=False)

    @property
    def routes(self) -> Routes:
        return Routes(canary=self.canary, mirror=self.mirror, cookies=self.cookies)


@dataclass(frozen=True)
class Promote:
    """Copy the target's template (and config copies) to the primary; sync the primary HPA.
    ``promotion_id``: stable for one run (Canary uid + revision), written on the primary (Flagger's id)."""

    promotion_id: str = field(default="", compare=False)


@dataclass(frozen=True)
class Emit:
    """A Kubernetes Event on the Canary (reason ``Synced``), also logged; ``alert`` is the severity of
    the Slack-style alert to send with ``alert_message`` ("" = none)."""

    message: str
    warning: bool = False
    alert: Severity = ""
    alert_message: str = ""
    checksum: str = field(default="", compare=False)  # the run's webhook checksum, for event webhooks


@dataclass(frozen=True)
class RunHooks:
    """Run the webhooks of one type (confirm-rollout, pre-rollout, rollout, confirm-traffic-increase,
    confirm-promotion, rollback, post-rollout) in list order, stopping at the first failure.

    ``wait=True``: the decision is a *request*: it has ``status=None`` and no other actions than
    ``RunHooks`` (possibly with ``analyse=True``); :mod:`canaryd.engine.driver` is the one loop that
    answers requests and asks again (a step needs at most two rounds: rollout/rollback hooks + checks,
    then a confirm-* gate). ``decide`` never asks for a type whose hooks are absent from the spec (it
    treats it as passed).

    ``wait=False`` (post-rollout, after Succeeded/Failed): fire and forget, carried out after the
    status write like any action; the runtime emits :func:`canaryd.engine.messages.hook_events` for
    the results.

    ``phase`` and ``checksum`` are what the webhook payload carries (Flagger's phase for the hook type,
    the run's checksum: engine/desired.py)."""

    hook_type: HookType
    wait: bool = True
    phase: str = field(default="", compare=False)
    checksum: str = field(default="", compare=False)


@dataclass(frozen=True)
class RevertRouting:
    """``revertOnDeletion``: give the apex Service and the VirtualService back (engine/finalize.py):
    taken-over ones get their saved spec, a generated apex Service is released selecting the target's
    pods (``selector_label: selector_value``), a generated VirtualService routes to the apex host."""

    selector_label: str | None = None
    selector_value: str | None = None


@dataclass(frozen=True)
class RemoveFinalizer:
    """Drop ``finalizer.flagger.app`` from the Canary, so the API server completes its deletion."""


Action = (EnsurePrimary | EnsureServicesAndRouting | ScaleTarget | SetRoutes | Promote | Emit | RunHooks
          | RevertRouting | RemoveFinalizer)


@dataclass(frozen=True)
class Inputs:
    """One call of the decision core."""

    now: float
    checks: tuple[CheckResult, ...] | None = None  # results of the analysis asked for, if any
    # hook type -> results of that type's hooks in spec order (may stop after the first failure)
    hooks: dict[str, tuple[HookResult, ...]] | None = None


@dataclass(frozen=True)
class Decision:
    """The core's answer.

    - ``status``: the next status to persist (``None`` = unchanged, nothing to write);
    - ``actions``: carried out after the status write, in order;
    - ``analyse``: true when the runtime must run the step's checks and call again with results;
    - ``wake_at``: wall-clock time of the next deadline (None = only on a change).
    """

    status: CanaryStatus | None = None
    actions: tuple[Action, ...] = ()
    analyse: bool = False
    wake_at: float | None = None
    log: tuple[str, ...] = field(default_factory=tuple)

    @property
    def requests(self) -> tuple[RunHooks, ...]:
        """The hook runs whose results ``decide`` waits for (see ``RunHooks``)."""
        return tuple(a for a in self.actions if isinstance(a, RunHooks) and a.wait)

    @property
    def is_request(self) -> bool:
        """True when the runtime must run hooks/checks and call ``decide`` again before writing."""
        return self.analyse or bool(self.requests)
