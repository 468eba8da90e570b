"""``canaryd loadtester``: flags (environment variables as defaults, never for the token) and the process
that serves the API. It refuses to start without a token file unless ``--insecure`` is given."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
from pathlib import Path
from typing import Any

from aiohttp import web

from canaryd.loadtester.gates import (
    DEFAULT_MAX_GATES,
    MAX_GATES_CEILING,
    ConfigMapGates,
    GateBook,
    GateStore,
    MemoryGates,
)
from canaryd.loadtester.metrics import LoadTesterMetrics
from canaryd.loadtester.policy import CommandPolicy
from canaryd.loadtester.runner import Runner
from canaryd.loadtester.secure import DEFAULT_TOKEN_FILE, TokenError, read_token, set_nondumpable
from canaryd.loadtester.server import ApiConfig, LoadTesterApi
from canaryd.loadtester.targets import TargetRule
from canaryd.model.durations import DurationError, parse_go_duration
from canaryd.version import user_agent as default_user_agent

SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _duration(text: str) -> float:
    try:
        return parse_go_duration(text)
    except DurationError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _regexp(text: str) -> str:
    try:
        re.compile(text)
    except re.error as err:
        raise argparse.ArgumentTypeError(f"invalid regular expression {text!r}: {err}") from None
    return text


def _no_token(_: str) -> str:
    raise argparse.ArgumentTypeError("a token on the command line is readable by every process: put it in a "
                                     "file and pass --token-file")


def _max_gates(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}") from None
    if not 1 <= value <= MAX_GATES_CEILING:
        raise argparse.ArgumentTypeError(f"--max-gates must be between 1 and {MAX_GATES_CEILING}")
    return value


def _own_namespace() -> str:
    """The pod's namespace: env POD_NAMESPACE (downward API), the ServiceAccount's, else ``default``."""
    env = os.environ.get("POD_NAMESPACE")
    if env:
        return env
    try:
        return SA_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``loadtester`` subcommand to ``canaryd``'s subparsers; its handler is :func:`main`."""
    env = os.environ.get
    p: argparse.ArgumentParser = sub.add_parser(
        "loadtester", help="run the load tester Flagger webhooks call (flagger-loadtester's API)"
    )
    p.add_argument("--port", type=int, default=int(env("LOADTESTER_PORT", "8080")),
                   help="env LOADTESTER_PORT")
    p.add_argument("--host", default=env("LOADTESTER_HOST", "0.0.0.0"),
                   help="bind address (env LOADTESTER_HOST)")
    p.add_argument("--kubeconfig", default=env("KUBECONFIG") or None,
                   help="kubeconfig for the gate ConfigMap (env KUBECONFIG); in-cluster when unset")
    p.add_argument("--state-namespace", default=None,
                   help="namespace of the gate ConfigMap (default: env POD_NAMESPACE, the pod's namespace)")
    p.add_argument("--gate-state", choices=["configmap", "memory"], default="configmap",
                   help="configmap: gates survive restarts (default); memory: Flagger's, lost on restart")
    p.add_argument("--enable-bash", action="store_true", default=env("LOADTESTER_ENABLE_BASH") == "true",
                   help="serve type bash (bash -c <cmd>); off by default (env LOADTESTER_ENABLE_BASH=true)")
    p.add_argument("--allow-command", action="append", default=[], metavar="PROG",
                   help="a program cmd tasks may run besides the built-in hey (repeatable)")
    p.add_argument("--namespace-regexp", type=_regexp, default=env("LOADTESTER_NAMESPACE_REGEXP"),
                   help="serve only canaries whose namespace matches (searched, as Go's MatchString); "
                        "default: the load tester's own namespace only (^NS$); '.*' for all")
    p.add_argument("--timeout", type=_duration, default=_duration(env("LOADTESTER_TIMEOUT", "1h")),
                   help="per-command timeout, a Go duration (default 1h)")
    p.add_argument("--token-file", type=Path, default=None,
                   help=f"file holding the token callers must present (default {DEFAULT_TOKEN_FILE}, a "
                        "Secret mounted as a volume); never read from the environment")
    p.add_argument("--token", type=_no_token, help=argparse.SUPPRESS)  # refused with the reason
    p.add_argument("--insecure", action="store_true",
                   help="serve without a token: anyone who reaches the port opens gates and runs commands")
    p.add_argument("--allow-external-targets", action="store_true",
                   help="let hey (and curl) reach any host, not only in-cluster Service names")
    p.add_argument("--gate-ttl", type=_duration, default=_duration("24h"),
                   help="an opened gate closes itself after this long (Go duration, default 24h)")
    p.add_argument("--max-gates", type=_max_gates, default=DEFAULT_MAX_GATES,
                   help=f"gates open at once, at most {MAX_GATES_CEILING} (default {DEFAULT_MAX_GATES})")
    p.add_argument("--max-commands", type=int, default=64, help="commands running at once; more answer 503")
    p.add_argument("--log-level", default=env("LOADTESTER_LOG_LEVEL", "info"),
                   choices=["debug", "info", "warning", "error"])
    p.set_defaults(handler=main)
    return p


def token_of(args: argparse.Namespace) -> str:
    """The token to require, or empty with ``--insecure``; raises :class:`TokenError` otherwise."""
    if os.environ.get("LOADTESTER_TOKEN"):
        raise TokenError("LOADTESTER_TOKEN is set, but the token is never read from the environment "
                         "(commands inherit it): put it in a file (a Secret volume) and pass --token-file")
    if args.insecure:
        if args.token_file is not None:
            raise TokenError("--insecure and --token-file contradict each other")
        return ""
    try:
        return read_token(args.token_file or DEFAULT_TOKEN_FILE)
    except TokenError as err:
        raise TokenError(f"{err}: the load tester needs a token (a Secret mounted as a file, see "
                         "manifests/loadtester) or --insecure to serve without one") from None


def namespace_filter(args: argparse.Namespace) -> str:
    """``--namespace-regexp``, by default the load tester's own namespace (anchored)."""
    if args.namespace_regexp is not None:
        return str(args.namespace_regexp)
    return f"^{re.escape(args.state_namespace or _own_namespace())}$"


def main(args: argparse.Namespace) -> int:
    from canaryd.runtime.logs import setup_logging

    log = setup_logging(args.log_level).getChild("loadtester")
    log.info("%s", set_nondumpable())  # first: before the token is read
    try:
        args.token = token_of(args)
    except TokenError as err:
        log.error("not starting: %s", err)
        return 2
    if not args.token:
        log.warning("--insecure: no token; whoever reaches the port opens gates and runs commands")
    try:
        return asyncio.run(serve(args, log))
    except KeyboardInterrupt:
        return 0


async def _gate_store(args: argparse.Namespace, log: logging.Logger, metrics: LoadTesterMetrics
                      ) -> tuple[GateStore, Any]:
    book = GateBook(ttl=args.gate_ttl, max_gates=args.max_gates)
    if args.gate_state == "memory":
        log.warning("gate state in memory: opened gates are lost when the load tester restarts")
        return MemoryGates(book), None
    from canaryd.kube.client import KubeClient

    agent = default_user_agent("canaryd-loadtester")
    client = await KubeClient.from_config(args.kubeconfig, user_agent=agent, registry=metrics.registry)
    namespace = args.state_namespace or _own_namespace()
    log.info("gate state in ConfigMap %s/%s", namespace, "canaryd-loadtester-gates")
    return ConfigMapGates(client, namespace, book=book), client


async def serve(args: argparse.Namespace, log: logging.Logger) -> int:
    """Serve until SIGTERM/SIGINT, then end every running command."""
    metrics = LoadTesterMetrics()
    gates, client = await _gate_store(args, log, metrics)
    runner = Runner(timeout=args.timeout, max_running=args.max_commands, log=log, metrics=metrics)
    namespaces = namespace_filter(args)
    config = ApiConfig(enable_bash=args.enable_bash, namespace_regexp=namespaces, token=args.token)
    policy = CommandPolicy(allowed=frozenset(args.allow_command),
                           targets=TargetRule(external=args.allow_external_targets, namespaces=namespaces))
    api = LoadTesterApi(config, policy, runner, gates, metrics, log)
    web_runner = web.AppRunner(api.app(), access_log=None)
    await web_runner.setup()
    site = web.TCPSite(web_runner, args.host, args.port)
    await site.start()
    bound = web_runner.addresses[0] if web_runner.addresses else (args.host, args.port)
    log.info("load tester listening on %s:%s", bound[0], bound[1],
             extra={"bash": args.enable_bash, "allowed": sorted(policy.allowed), "token": bool(args.token),
                    "namespaces": namespaces, "external_targets": args.allow_external_targets})
    if args.enable_bash:
        log.warning("--enable-bash: bash commands run anything, past the allow-lists and target rules")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("load tester stopping")
        await runner.close()
        await web_runner.cleanup()
        if client is not None:
            await client.close()
    return 0
