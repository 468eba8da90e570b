"""Process settings, from flags and environment variables (flags win)."""

from __future__ import annotations

from dataclasses import dataclass, field

from canaryd.model import defaults
from canaryd.version import user_agent as default_user_agent


@dataclass(frozen=True)
class Settings:
    kubeconfig: str | None = None  # None => in-cluster; "a:b" => merged
    context: str | None = None  # None => the kubeconfig's current-context
    master: str | None = None  # API server URL in place of the kubeconfig's / in-cluster one
    namespace: str | None = None  # None => all namespaces
    metrics_server: str = field(default=defaults.METRICS_SERVER, repr=False)  # may hold user:password@
    selector_labels: tuple[str, ...] = defaults.SELECTOR_LABELS
    include_label_prefix: tuple[str, ...] = ()
    config_tracking: bool = True
    log_level: str = defaults.LOG_LEVEL
    port: int = defaults.HTTP_PORT
    host: str = defaults.HTTP_HOST
    user_agent: str = field(default_factory=default_user_agent)  # canaryd/<version>
    cluster_name: str = ""
    event_source_component: str = defaults.EVENT_SOURCE_COMPONENT  # Events' source.component
    no_cross_namespace_refs: bool = False  # refuse templateRef/providerRef to other namespaces
    # what a peer chosen by a Canary author may cost (analysis/bounded.py): answer sizes and query time
    max_metrics_answer_bytes: int = 10 * 1024 * 1024
    max_webhook_answer_bytes: int = 64 * 1024
    metrics_query_timeout: float = 30.0
    heap_trim_interval: float = 60.0  # seconds between malloc_trim calls (runtime/c_heap.py); 0: never
    # alerts without AlertProviders and event webhooks (notify/); URLs and tokens are credentials:
    # kept out of repr so a logged Settings never shows them
    slack_url: str = field(default="", repr=False)
    slack_token: str = field(default="", repr=False)
    slack_proxy_url: str = field(default="", repr=False)
    slack_user: str = "flagger"
    slack_channel: str = "general"
    msteams_url: str = field(default="", repr=False)
    msteams_proxy_url: str = field(default="", repr=False)
    event_webhook: str = field(default="", repr=False)
    # leader election (runtime/leader.py): only the holder of the Lease drives canaries
    leader_elect: bool = False
    leader_election_namespace: str = "canaryd-system"
    leader_identity: str = ""  # "" => hostname + random suffix
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    # fault injection for the durability tests: exit hard at a named point (see runtime/crash.py)
    crash_points: str = ""  # CANARYD_CRASH_AT syntax
