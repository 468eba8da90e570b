"""Process settings, from flags and environment variables (flags win)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Settings:
    kubeconfig: str | None = None  # None => in-cluster
    namespace: str | None = None  # None => all namespaces
    metrics_server: str = "http://prometheus:9090"
    selector_labels: tuple[str, ...] = ("app", "name", "app.kubernetes.io/name")
    include_label_prefix: tuple[str, ...] = ()
    config_tracking: bool = True
    log_level: str = "info"
    port: int = 8080
    host: str = "0.0.0.0"
    user_agent: str = "canaryd/0.1.0"
    cluster_name: str = ""
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
