"""``canaryd`` command line: flags, with environment variables as defaults (flags win)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from canaryd.model import defaults
from canaryd.settings import Settings
from canaryd.version import user_agent, version


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


def _bool_text(text: str) -> bool:
    """``true``/``false`` (and 1/0, yes/no, on/off) after ``=``, as Go's boolean flags take them."""
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def _csv(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


class _Parser(argparse.ArgumentParser):
    """A usage error is one line (the whole usage text buries it in a pod's log)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = _Parser(prog="canaryd", description="Canary releases on Kubernetes with Istio")
    p.add_argument("--version", "-version", action="version", version=version(),
                   help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator (in-cluster unless --kubeconfig is given)")
    run.add_argument(
        "--kubeconfig",
        default=env("KUBECONFIG") or None,
        help="kubeconfig path, or several joined with ':' and merged (env KUBECONFIG); in-cluster "
        "config when unset",
    )
    run.add_argument("--context", default=env("CANARYD_CONTEXT") or None,
                     help="kubeconfig context (env CANARYD_CONTEXT; default: its current-context)")
    run.add_argument("--master", default=env("CANARYD_MASTER") or None,
                     help="API server URL, in place of the kubeconfig's or the in-cluster one "
                     "(env CANARYD_MASTER; Flagger's -master)")
    run.add_argument(
        "--namespace",
        default=env("CANARYD_NAMESPACE") or None,
        help="watch only this namespace (env CANARYD_NAMESPACE); all when unset",
    )
    run.add_argument(
        "--metrics-server",
        default=env("CANARYD_METRICS_SERVER", defaults.METRICS_SERVER),
        help="Prometheus URL for the builtin checks (env CANARYD_METRICS_SERVER)",
    )
    run.add_argument(
        "--selector-labels",
        default=env("CANARYD_SELECTOR_LABELS", ",".join(defaults.SELECTOR_LABELS)),
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
        default=env("CANARYD_LOG_LEVEL", defaults.LOG_LEVEL),
        choices=["debug", "info", "warning", "error"],
        help="env CANARYD_LOG_LEVEL",
    )
    run.add_argument(
        "--port",
        type=int,
        default=int(env("CANARYD_PORT", str(defaults.HTTP_PORT))),
        help="HTTP port for /metrics, /healthz, /readyz (env CANARYD_PORT)",
    )
    run.add_argument(
        "--host", default=env("CANARYD_HOST", defaults.HTTP_HOST), help="HTTP bind address (env CANARYD_HOST)"
    )
    run.add_argument(
        "--user-agent",
        default=env("CANARYD_USER_AGENT") or user_agent(),
        help="User-Agent of API requests, as the audit log shows it (env CANARYD_USER_AGENT)",
    )
    run.add_argument("--cluster-name", default=env("CANARYD_CLUSTER_NAME", ""), help="shown in alerts")
    run.add_argument("--event-source-component",
                     default=env("CANARYD_EVENT_SOURCE_COMPONENT", defaults.EVENT_SOURCE_COMPONENT),
                     help="source.component of the Events canaryd writes; Flagger's 'flagger' by default so "
                     "scripts selecting Events by component keep working "
                     "(env CANARYD_EVENT_SOURCE_COMPONENT)")
    run.add_argument("--no-cross-namespace-refs", "-no-cross-namespace-refs", nargs="?", const=True,
                     type=_bool_text, default=_env_bool("CANARYD_NO_CROSS_NAMESPACE_REFS", False),
                     help="refuse MetricTemplates and AlertProviders of another namespace than the Canary's; "
                     "Flagger's spelling and =true/=false accepted (env CANARYD_NO_CROSS_NAMESPACE_REFS)")
    _peer_flags(run)
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
    from canaryd.console.cli import add_parsers as add_console  # list, get, wait, dashboard

    add_console(sub)
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


def _size(text: str) -> int:
    """A positive byte count, plain (``65536``) or with a binary suffix (``64Ki``, ``10Mi``), for argparse."""
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}
    number, factor = text.strip(), 1
    if number[-2:] in units:
        number, factor = number[:-2], units[number[-2:]]
    try:
        size = int(number) * factor
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size in bytes (65536, 64Ki, 10Mi)") from None
    if size <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return size


def _positive_duration(text: str) -> float:
    seconds = _duration(text)
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive duration, e.g. 30s")
    return seconds


def _non_negative_duration(text: str) -> float:
    seconds = _duration(text)
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a duration of 0 or more, e.g. 60s")
    return seconds


def _peer_flags(run: argparse.ArgumentParser) -> None:
    """Bounds on what Prometheus servers, webhooks and notifiers (peers a Canary author may choose) cost."""
    env = os.environ.get
    run.add_argument("--max-metrics-answer-bytes", type=_size,
                     default=env("CANARYD_MAX_METRICS_ANSWER_BYTES", "10Mi"),
                     help="a larger Prometheus answer fails the check (env CANARYD_MAX_METRICS_ANSWER_BYTES)")
    run.add_argument("--max-webhook-answer-bytes", type=_size,
                     default=env("CANARYD_MAX_WEBHOOK_ANSWER_BYTES", "64Ki"),
                     help="a larger webhook, event webhook or alert receiver answer fails the call "
                     "(env CANARYD_MAX_WEBHOOK_ANSWER_BYTES)")
    run.add_argument("--metrics-query-timeout", type=_positive_duration,
                     default=env("CANARYD_METRICS_QUERY_TIMEOUT", "30s"),
                     help="the longest a step's metric checks may take, whatever the analysis interval "
                     "(env CANARYD_METRICS_QUERY_TIMEOUT)")
    run.add_argument("--heap-trim-interval", type=_non_negative_duration,
                     default=env("CANARYD_HEAP_TRIM_INTERVAL", "60s"),
                     help="how often freed C-heap pages go back to the kernel (malloc_trim; glibc only); "
                     "0 never (env CANARYD_HEAP_TRIM_INTERVAL)")


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
        context=args.context,
        master=args.master,
        namespace=args.namespace,
        metrics_server=args.metrics_server.rstrip("/"),
        selector_labels=_csv(args.selector_labels),
        include_label_prefix=_csv(args.include_label_prefix),
        config_tracking=args.enable_config_tracking,
        log_level=args.log_level,
        port=args.port,
        host=args.host,
        cluster_name=args.cluster_name,
        event_source_component=args.event_source_component,
        no_cross_namespace_refs=args.no_cross_namespace_refs,
        max_metrics_answer_bytes=args.max_metrics_answer_bytes,
        max_webhook_answer_bytes=args.max_webhook_answer_bytes,
        metrics_query_timeout=args.metrics_query_timeout,
        heap_trim_interval=args.heap_trim_interval,
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


def _run_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            run: argparse.ArgumentParser = action.choices["run"]
            return run
    raise LookupError("no run command")  # pragma: no cover


def _takes_value(parser: argparse.ArgumentParser) -> Callable[[str], bool]:
    """Whether ``canaryd run``'s option eats the next argument (so that argument is never read as a flag)."""

    def takes(option: str) -> bool:
        action = parser._option_string_actions.get(option)
        return action is not None and action.nargs not in (0, "?")

    return takes


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    ignored: list[str] = []
    if argv[:1] == ["run"]:
        from canaryd.flagger_flags import FlagError, translate

        try:
            flagger = translate(argv[1:], _takes_value(_run_parser(parser)))
        except FlagError as err:
            print(f"canaryd: {err}", file=sys.stderr)
            return 2
        if flagger.version:
            print(version())
            return 0
        argv, ignored = ["run", *flagger.argv], flagger.ignored
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args, ignored)
    if args.command == "demo":
        from canaryd.demo.run import main as demo_main

        return demo_main(args.bed_dir, args.namespace, args.down)
    if args.command == "loadtester":
        return int(args.handler(args))
    if getattr(args, "console", None) is not None:  # kubectl canary's commands
        from canaryd.console.cli import run as console_run

        return console_run(args)
    return 2


def flagger_main(argv: Sequence[str] | None = None) -> int:
    """The image's ``/flagger``: ``canaryd run`` with Flagger's flags and no subcommand, so Flagger's own
    Deployment (``command: [./flagger, -log-level=info, ...]``) runs canaryd unchanged."""
    return main(["run", *(sys.argv[1:] if argv is None else argv)])


def _run(args: argparse.Namespace, ignored: Sequence[str]) -> int:
    from canaryd.kube.config import ConfigError
    from canaryd.kube.crd_check import StartError
    from canaryd.runtime.app import run
    from canaryd.runtime.logs import setup_logging

    settings = settings_from_args(args)
    problem = _leader_problem(settings)
    if problem:
        print(f"canaryd: {problem}", file=sys.stderr)
        return 2
    logger = setup_logging(settings.log_level)
    # the config loader's own log lines (a failing exec plugin) would print unformatted beside the one
    # line canaryd prints for the same error
    logging.getLogger("kubernetes_asyncio").addHandler(logging.NullHandler())
    if ignored:
        logger.warning("Flagger flags accepted and ignored (canaryd has no use for them): "
                       + " ".join(ignored))
    try:
        return asyncio.run(run(settings, logger))
    except ConfigError as err:  # before anything started: one line, no traceback
        print(f"canaryd: {err}", file=sys.stderr)
        return 2
    except StartError as err:
        print(f"canaryd: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
