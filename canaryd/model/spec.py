"""Parsed, defaulted Canary spec: the one shape every layer reads.

Raw Canary dicts (``flagger.app/v1beta1`` or the 2019 ``v1alpha3`` shape with ``canaryAnalysis``)
are turned into these frozen dataclasses by :mod:`canaryd.model.parse`; nothing else reads the raw
spec, so defaults and legacy aliases live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from canaryd.model.primary import primary_name

if TYPE_CHECKING:  # judge_spec imports this module (CheckPolicy)
    from canaryd.model.judge_spec import JudgeSpec

JSON = dict[str, Any]


@dataclass(frozen=True)
class TargetRef:
    api_version: str
    kind: str
    name: str


@dataclass(frozen=True)
class AutoscalerRef:
    api_version: str
    kind: str
    name: str
    # ``primaryScalerReplicas``: the primary HPA's min/max instead of the target HPA's (None = copy)
    primary_min_replicas: int | None = None
    primary_max_replicas: int | None = None


@dataclass(frozen=True)
class ServiceSpec:
    """``spec.service``; routing options are kept as raw JSON, copied into Istio objects as-is."""

    name: str  # apex service name (defaults to targetRef.name)
    port: int
    port_name: str = "http"
    target_port: int | str | None = None  # None => same as port
    app_protocol: str | None = None
    port_discovery: bool = False
    gateways: tuple[str, ...] = ("mesh",)
    hosts: tuple[str, ...] = ()  # as written; the apex name is appended when building the VS
    delegation: bool = False
    timeout: str | None = None
    match: tuple[JSON, ...] = ()
    rewrite: JSON | None = None
    retries: JSON | None = None
    headers: JSON | None = None
    cors_policy: JSON | None = None
    traffic_policy: JSON | None = None
    headless: bool = False
    apex: JSON | None = None  # {labels, annotations}
    primary: JSON | None = None
    canary: JSON | None = None
    traffic_distribution: str | None = None  # copied onto the generated Services
    # ``unmanagedMetadata``: label / annotation keys of generated Services canaryd never adds, changes
    # or removes (another controller owns them)
    unmanaged_labels: tuple[str, ...] = ()
    unmanaged_annotations: tuple[str, ...] = ()


@dataclass(frozen=True)
class ThresholdRange:
    min: float | None = None
    max: float | None = None


NodataMode = Literal["fail", "ignore"]


@dataclass(frozen=True)
class CheckPolicy:
    """canaryd's verdict options of one check (a metric or a rollout webhook; docs/verdicts.md): how
    its ``error`` and ``nodata`` results count, whether it counts at all (``dryRun``) and from when
    (``initialDelay``). The defaults are Flagger's behaviour."""

    consecutive_error_limit: int = 1  # errors in a row before an error counts as a failed check
    nodata: NodataMode = "fail"  # "ignore": no data never counts
    dry_run: bool = False  # measured and recorded, never counts
    initial_delay_seconds: float = 0.0  # not counted during the first D of a run

    @property
    def may_not_count(self) -> bool:
        """A failure of this check may not count (so the hooks after it must still be called)."""
        return self.dry_run or self.consecutive_error_limit > 1 or self.initial_delay_seconds > 0


DEFAULT_POLICY = CheckPolicy()


@dataclass(frozen=True)
class MetricSpec:
    name: str
    interval: str = "1m"  # metric window as written (Go duration string)
    threshold: float | None = None  # legacy single threshold
    threshold_range: ThresholdRange | None = None
    query: str | None = None  # inline PromQL
    template_ref: JSON | None = None  # {name, namespace}
    template_variables: JSON = field(default_factory=dict)
    # "request-success-rate" | "request-duration" when the check is a builtin (by name, or by the 2019
    # legacy names istio_requests_total / istio_request_duration_seconds_bucket); None otherwise.
    # ``name`` keeps the name as written, for messages.
    builtin: str | None = None
    policy: CheckPolicy = DEFAULT_POLICY  # canaryd's verdict options
    # canaryd: a value within this range is ``inconclusive`` whatever thresholdRange says (not builtins)
    inconclusive_range: ThresholdRange | None = None


# the webhook types of the CRD (``event`` is not a step's: it receives every Event)
HookType = Literal["confirm-rollout", "pre-rollout", "rollout", "confirm-traffic-increase",
                   "confirm-promotion", "post-rollout", "rollback", "event"]
# an alert's severity ("" = every one); the engine's Events carry one when they alert
AlertSeverity = Literal["", "info", "warn", "error"]


@dataclass(frozen=True)
class WebhookSpec:
    name: str
    url: str
    type: HookType = "rollout"  # "" is normalised to "rollout"
    timeout_seconds: float = 10.0
    retries: int = 0
    disable_tls: bool = False
    mute_alert: bool = False
    metadata: JSON = field(default_factory=dict)
    policy: CheckPolicy = DEFAULT_POLICY  # canaryd's verdict options (rollout webhooks only)


@dataclass(frozen=True)
class AlertSpec:
    name: str
    provider_name: str
    provider_namespace: str | None = None
    severity: AlertSeverity = ""


@dataclass(frozen=True)
class AnalysisSpec:
    interval_seconds: float = 60.0  # honoured as written (no 10 s floor: docs/compatibility.md)
    threshold: int = 1
    max_weight: int = 100
    step_weight: int = 0
    step_weights: tuple[int, ...] = ()
    step_weight_promotion: int = 0
    iterations: int = 0
    mirror: bool = False
    mirror_weight: int = 0
    match: tuple[JSON, ...] = ()
    primary_ready_threshold: int = 100
    canary_ready_threshold: int = 100
    session_affinity: JSON | None = None
    metrics: tuple[MetricSpec, ...] = ()
    webhooks: tuple[WebhookSpec, ...] = ()
    alerts: tuple[AlertSpec, ...] = ()
    # canaryd: how long an inconclusive step waits for a person before it rolls back (None = the
    # Canary's progressDeadlineSeconds)
    inconclusive_timeout_seconds: float | None = None
    judge: JudgeSpec | None = None  # canaryd: the statistical judge, canary against primary


@dataclass(frozen=True)
class CanarySpec:
    name: str
    namespace: str
    uid: str
    generation: int
    target: TargetRef
    service: ServiceSpec
    analysis: AnalysisSpec
    autoscaler: AutoscalerRef | None = None
    provider: str = "istio"
    metrics_server: str | None = None
    progress_deadline_seconds: int = 600
    skip_analysis: bool = False
    revert_on_deletion: bool = False
    suspend: bool = False
    api_version: str = "flagger.app/v1beta1"
    # paths of fields set in the spec that canaryd accepts without effect although Flagger's Istio mode
    # has one (canaryd.model.coverage): the engine names them in one Warning Event per generation
    ignored_fields: tuple[str, ...] = ()
    # metadata.creationTimestamp, epoch seconds (None when absent): a Canary created a moment ago may be
    # seen before its target, which came through another watch (engine/decide.py, TARGET_GRACE)
    created_at: float | None = None

    @property
    def key(self) -> str:
        """``name.namespace``, the form used in Flagger's messages and the ``canary`` log field."""
        return f"{self.name}.{self.namespace}"

    @property
    def primary_name(self) -> str:
        """``<target>-primary``: the primary Deployment."""
        return primary_name(self.target.name)

    @property
    def strategy(self) -> str:
        """Flagger's ``DeploymentStrategy()``: ab-testing, blue-green or canary."""
        if self.analysis.iterations > 0 and self.analysis.match:
            return "ab-testing"
        if self.analysis.iterations > 0:
            return "blue-green"
        return "canary"


@dataclass(frozen=True)
class SpecError:
    """A Canary that cannot be run as written; ``message`` goes to a condition and a Warning Event."""

    message: str
