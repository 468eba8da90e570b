"""``canaryd loadtester``: flags (environment variables as defaults) and the process that serves the API."""

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

from canaryd.loadtester.gates import ConfigMapGates, GateStore, MemoryGates
from canaryd.loadtester.metrics import LoadTesterMetrics
from canaryd.loadtester.policy import CommandPolicy
from canaryd.loadtester.runner import Runner
from canaryd.loadtester.server import ApiConfig, LoadTesterApi
from canaryd.model.durations import DurationError, parse_go_duration

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
    p.add_argument("--namespace-regexp", type=_regexp, default=env("LOADTESTER_NAMESPACE_REGEXP", ""),
                   help="serve only canaries whose namespace matches (searched, as Go's MatchString)")
    p.add_argument("--timeout", type=_duration, default=_duration(env("LOADTESTER_TIMEOUT", "1h")),
                   help="per-command timeout, a Go duration (default 1h)")
    p.add_argument("--token", default=env("LOADTESTER_TOKEN", ""),
                   help="require this bearer token (or basic-auth password) (env LOADTESTER_TOKEN)")
    p.add_argument("--max-commands", type=int, default=64, help="commands running at once; more answer 503")
    p.add_argument("--log-level", default=env("LOADTESTER_LOG_LEVEL", "info"),
                   choices=["debug", "info", "warning", "error"])
    p.set_defaults(handler=main)
    return p


def main(args: argparse.Namespace) -> int:
    from canaryd.runtime.logs import setup_logging

    log = setup_logging(args.log_level).getChild("loadtester")
    try:
        return asyncio.run(serve(args, log))
    except KeyboardInterrupt:
        return 0


async def _gate_store(args: argparse.Namespace, log: logging.Logger, metrics: LoadTesterMetrics
                      ) -> tuple[GateStore, Any]:
    if args.gate_state == "memory":
        log.warning("gate state in memory: opened gates are lost when the load tester restarts")
        return MemoryGates(), None
    from canaryd.kube.client import KubeClient

    client = await KubeClient.from_config(args.kubeconfig, user_agent="canaryd-loadtester/0.1.0",
                                          registry=metrics.registry)
    namespace = args.state_namespace or _own_namespace()
    log.info("gate state in ConfigMap %s/%s", namespace, "canaryd-loadtester-gates")
    return ConfigMapGates(client, namespace), client


async def serve(args: argparse.Namespace, log: logging.Logger) -> int:
    """Serve until SIGTERM/SIGINT, then end every running command."""
    metrics = LoadTesterMetrics()
    gates, client = await _gate_store(args, log, metrics)
    runner = Runner(timeout=args.timeout, max_running=args.max_commands, log=log, metrics=metrics)
    config = ApiConfig(enable_bash=args.enable_bash, namespace_regexp=args.namespace_regexp, token=args.token)
    policy = CommandPolicy(allowed=frozenset(args.allow_command))
    api = LoadTesterApi(config, policy, runner, gates, metrics, log)
    web_runner = web.AppRunner(api.app(), access_log=None)
    await web_runner.setup()
    site = web.TCPSite(web_runner, args.host, args.port)
    await site.start()
    bound = web_runner.addresses[0] if web_runner.addresses else (args.host, args.port)
    log.info("load tester listening on %s:%s", bound[0], bound[1],
             extra={"bash": args.enable_bash, "allowed": sorted(policy.allowed), "token": bool(args.token)})
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
