"""``canaryd`` command line: flags, with environment variables as defaults (flags win)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from canaryd.settings import Settings


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


def _csv(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="canaryd", description="Canary releases on Kubernetes with Istio")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator (in-cluster unless --kubeconfig is given)")
    run.add_argument(
        "--kubeconfig",
        default=env("KUBECONFIG") or None,
        help="kubeconfig path (env KUBECONFIG); in-cluster config when unset",
    )
    run.add_argument(
        "--namespace",
        default=env("CANARYD_NAMESPACE") or None,
        help="watch only this namespace (env CANARYD_NAMESPACE); all when unset",
    )
    run.add_argument(
        "--metrics-server",
        default=env("CANARYD_METRICS_SERVER", "http://prometheus:9090"),
        help="Prometheus URL for the builtin checks (env CANARYD_METRICS_SERVER)",
    )
    run.add_argument(
        "--selector-labels",
        default=env("CANARYD_SELECTOR_LABELS", "app,name,app.kubernetes.io/name"),
        help="labels that select a workload's pods, first match wins (env CANARYD_SELECTOR_LABELS)",
    )
    run.add_argument(
        "--include-label-prefix",
        default=env("CANARYD_INCLUDE_LABEL_PREFIX", ""),
        help="target labels copied to generated objects, comma list, * = all "
        "(env CANARYD_INCLUDE_LABEL_PREFIX)",
    )
    run.add_argument(
        "--enable-config-tracking",
        default=_env_bool("CANARYD_CONFIG_TRACKING", True),
        action=argparse.BooleanOptionalAction,
        help="treat changes of ConfigMaps/Secrets used by the target as new revisions "
        "(env CANARYD_CONFIG_TRACKING)",
    )
    run.add_argument(
        "--log-level",
        default=env("CANARYD_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
        help="env CANARYD_LOG_LEVEL",
    )
    run.add_argument(
        "--port",
        type=int,
        default=int(env("CANARYD_PORT", "8080")),
        help="HTTP port for /metrics, /healthz, /readyz (env CANARYD_PORT)",
    )
    run.add_argument(
        "--host", default=env("CANARYD_HOST", "0.0.0.0"), help="HTTP bind address (env CANARYD_HOST)"
    )
    run.add_argument(
        "--user-agent",
        default=env("CANARYD_USER_AGENT", "canaryd/0.1.0"),
        help="User-Agent of API requests, as the audit log shows it (env CANARYD_USER_AGENT)",
    )
    run.add_argument("--cluster-name", default=env("CANARYD_CLUSTER_NAME", ""), help="shown in alerts")
    _alert_flags(run)
    _leader_flags(run)
    demo = sub.add_parser("demo", help="the tutorial on a local test bed, live in the terminal "
                          "(needs the repository checkout; the first start builds Kubernetes, ~13 min)")
    demo.add_argument("--bed-dir", default=None, help="bed directory (default: .bed/ in the checkout); "
                      "a running bed there is reused")
    demo.add_argument("--namespace", default="test", help="namespace of the demo app (default: test)")
    demo.add_argument("--down", action="store_true", help="stop the bed and canaryd started by the demo")
    from canaryd.loadtester.cli import add_parser as add_loadtester  # sets handler=loadtester.cli.main

    add_loadtester(sub)
    return p


def _duration(text: str) -> float:
    """A Go duration (``15s``, ``1m``) or plain seconds, for argparse."""
    from canaryd.model.durations import DurationError, parse_go_duration

    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parse_go_duration(text)
    except DurationError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _leader_flags(run: argparse.ArgumentParser) -> None:
    """Leader election between replicas (a coordination.k8s.io/v1 Lease named canaryd-leader)."""
    env = os.environ.get
    run.add_argument("--leader-elect", default=_env_bool("CANARYD_LEADER_ELECT", False),
                     action=argparse.BooleanOptionalAction,
                     help="only the replica holding the lease drives canaries (env CANARYD_LEADER_ELECT)")
    run.add_argument("--leader-election-namespace", default=env("CANARYD_LEADER_ELECTION_NAMESPACE") or None,
                     help="namespace of the Lease (env CANARYD_LEADER_ELECTION_NAMESPACE; default: the "
                     "pod's namespace, POD_NAMESPACE or the ServiceAccount's, else canaryd-system)")
    run.add_argument("--leader-election-id", default=env("CANARYD_LEADER_ELECTION_ID", ""),
                     help="this replica's identity (env CANARYD_LEADER_ELECTION_ID; default: hostname "
                     "plus a random suffix)")
    run.add_argument("--lease-duration", type=_duration, default=env("CANARYD_LEASE_DURATION", "15s"),
                     help="a standby takes an unrenewed lease after this long (env CANARYD_LEASE_DURATION)")
    run.add_argument("--renew-deadline", type=_duration, default=env("CANARYD_RENEW_DEADLINE", "10s"),
                     help="the leader stops all canary work when it could not renew for this long "
                     "(env CANARYD_RENEW_DEADLINE)")
    run.add_argument("--retry-period", type=_duration, default=env("CANARYD_RETRY_PERIOD", "2s"),
                     help="between lease attempts (env CANARYD_RETRY_PERIOD)")


def _alert_flags(run: argparse.ArgumentParser) -> None:
    """Flagger's global notifier and event webhook flags (used when a Canary lists no alerts)."""
    env = os.environ.get
    run.add_argument("--slack-url", default=env("SLACK_URL", ""), help="Slack webhook (env SLACK_URL)")
    run.add_argument("--slack-token", default=env("SLACK_TOKEN", ""), help="bearer token (env SLACK_TOKEN)")
    run.add_argument("--slack-proxy-url", default=env("SLACK_PROXY_URL", ""), help="env SLACK_PROXY_URL")
    run.add_argument("--slack-user", default=env("SLACK_USER", "flagger"), help="env SLACK_USER")
    run.add_argument("--slack-channel", default=env("SLACK_CHANNEL", "general"), help="env SLACK_CHANNEL")
    run.add_argument("--msteams-url", default=env("MSTEAMS_URL", ""),
                     help="MS Teams webhook, wins over Slack (env MSTEAMS_URL)")
    run.add_argument("--msteams-proxy-url", default=env("MSTEAMS_PROXY_URL", ""),
                     help="env MSTEAMS_PROXY_URL")
    run.add_argument("--event-webhook", default=env("EVENT_WEBHOOK_URL", ""),
                     help="every Event is also POSTed here when a Canary has no event webhook "
                     "(env EVENT_WEBHOOK_URL)")


def settings_from_args(args: argparse.Namespace) -> Settings:
    from canaryd.runtime.lease import default_namespace

    return Settings(
        kubeconfig=args.kubeconfig,
        namespace=args.namespace,
        metrics_server=args.metrics_server.rstrip("/"),
        selector_labels=_csv(args.selector_labels),
        include_label_prefix=_csv(args.include_label_prefix),
        config_tracking=args.enable_config_tracking,
        log_level=args.log_level,
        port=args.port,
        host=args.host,
        cluster_name=args.cluster_name,
        slack_url=args.slack_url,
        slack_token=args.slack_token,
        slack_proxy_url=args.slack_proxy_url,
        slack_user=args.slack_user,
        slack_channel=args.slack_channel,
        msteams_url=args.msteams_url,
        msteams_proxy_url=args.msteams_proxy_url,
        event_webhook=args.event_webhook,
        user_agent=args.user_agent,
        leader_elect=args.leader_elect,
        leader_election_namespace=args.leader_election_namespace or default_namespace(),
        leader_identity=args.leader_election_id,
        lease_duration=args.lease_duration,
        renew_deadline=args.renew_deadline,
        retry_period=args.retry_period,
        crash_points=os.environ.get("CANARYD_CRASH_AT", ""),
    )


def _leader_problem(settings: Settings) -> str:
    from canaryd.runtime.lease import config_problem

    if not settings.leader_elect:
        return ""
    return config_problem(settings.lease_duration, settings.renew_deadline, settings.retry_period)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        from canaryd.runtime.app import run
        from canaryd.runtime.logs import setup_logging

        settings = settings_from_args(args)
        problem = _leader_problem(settings)
        if problem:
            print(f"canaryd: {problem}", file=sys.stderr)
            return 2
        logger = setup_logging(settings.log_level)
        return asyncio.run(run(settings, logger))
    if args.command == "demo":
        from canaryd.demo.run import main as demo_main

        return demo_main(args.bed_dir, args.namespace, args.down)
    if args.command == "loadtester":
        return int(args.handler(args))
    return 2


if __name__ == "__main__":
    sys.exit(main())
