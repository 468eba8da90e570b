"""``kubectl canary`` (the ``kubectl-canary`` script) and the same commands under ``canaryd``: list, get,
wait, promote, abort, retry, pause, resume, history, dashboard. Flags as kubectl's: ``--kubeconfig``,
``--context``, ``-n``, ``-A``, ``-o json``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

COMMANDS = ("list", "get", "wait", "promote", "abort", "retry", "pause", "resume", "history", "dashboard")

ACTION_HELP = {
    "promote": "skip the rest of the analysis and promote now (--full: skip the promotion gates too)",
    "abort": "roll the run back now",
    "retry": "run the analysis again for the revision that failed, without a spec change",
    "pause": "hold the run where it is (a request: GitOps tools would revert a spec edit)",
    "resume": "let a paused run go on",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(3, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _duration(text: str) -> float:
    from canaryd.model.durations import DurationError, parse_go_duration

    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = parse_go_duration(text)
        except DurationError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive duration, e.g. 10m")
    return seconds


def _common(p: argparse.ArgumentParser, *, all_namespaces: bool = False, output: bool = True) -> None:
    p.add_argument("--kubeconfig", default=None,
                   help="kubeconfig path(s), ':'-joined (default: KUBECONFIG, then ~/.kube/config)")
    p.add_argument("--context", default=None, help="kubeconfig context (default: its current-context)")
    p.add_argument("-n", "--namespace", default=None,
                   help="namespace (default: the context's namespace, else default)")
    if all_namespaces:
        p.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    if output:
        p.add_argument("-o", "--output", choices=["json"], default="", help="json for scripts")


def add_parsers(sub: Any) -> None:
    """Register the console's subcommands on ``sub`` (an argparse subparsers action); each sets
    ``console`` to its handler."""
    p = sub.add_parser("list", help="canaries, one line each, with their last check verdicts")
    _common(p, all_namespaces=True)
    p.set_defaults(console=_list)
    p = sub.add_parser("get", help="one canary: phase, weight, checks, gates, next step, Events")
    _common(p)
    p.add_argument("name")
    p.add_argument("-w", "--watch", action="store_true",
                   help="follow it live (redrawn in place on a terminal, one line per change when piped)")
    p.set_defaults(console=_get)
    p = sub.add_parser("wait", help="wait for a revision's run to end: exit 0 promoted, 1 rolled back or "
                       "failed, 2 timed out, 3 invalid or not found")
    _common(p)
    p.add_argument("name")
    p.add_argument("--revision", default=None,
                   help="the revision hash (status.lastAppliedSpec) or the target's image (default: the "
                   "target's current pod template)")
    p.add_argument("--timeout", type=_duration, default=600.0, help="e.g. 10m (default 10m)")
    p.set_defaults(console=_wait)
    for action, text in ACTION_HELP.items():
        p = sub.add_parser(action, help=f"{text}; exit 0 done, 1 refused or ignored, 2 timed out, "
                           "3 invalid or not found, 4 canaryd never acted")
        _common(p)
        p.add_argument("name")
        if action == "promote":
            p.add_argument("--full", action="store_true", help="skip the promotion gates as well")
        p.add_argument("--revision", default=None,
                       help="the revision the request targets: a hash (status.lastAppliedSpec) or the "
                       "image the target runs now (default: status.lastAppliedSpec, the run you see); "
                       "canaryd never acts on another one")
        p.add_argument("--timeout", type=_duration, default=60.0,
                       help="how long to wait for canaryd to act, e.g. 2m (default 1m)")
        p.set_defaults(console=_action, action=action)
    p = sub.add_parser("history", help="the run history table (status.history, newest first)")
    _common(p)
    p.add_argument("name")
    p.set_defaults(console=_history)
    p = sub.add_parser("dashboard", help="a local web UI of the canaries, live, with your credentials")
    _common(p, all_namespaces=True, output=False)
    p.add_argument("--address", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="listen port (default: a free one)")
    p.set_defaults(console=_dashboard)


def _options(args: argparse.Namespace) -> Any:
    from canaryd.console.commands import Options
    from canaryd.console.kube import context_namespace, kubeconfig_path

    kubeconfig = kubeconfig_path(args.kubeconfig)
    namespace = None if getattr(args, "all_namespaces", False) else (
        args.namespace or context_namespace(kubeconfig, args.context))
    return Options(kubeconfig=kubeconfig, context=args.context, namespace=namespace,
                   output=getattr(args, "output", ""))


def _quiet() -> None:
    logging.getLogger("kubernetes_asyncio").addHandler(logging.NullHandler())


def _list(args: argparse.Namespace) -> int:
    from canaryd.console.commands import list_command

    return asyncio.run(list_command(_options(args)))


def _get(args: argparse.Namespace) -> int:
    from canaryd.console.commands import get_command

    return asyncio.run(get_command(_options(args), args.name, args.watch))


def _wait(args: argparse.Namespace) -> int:
    from canaryd.console.commands import wait_command

    return asyncio.run(wait_command(_options(args), args.name, args.revision, args.timeout))


def _action(args: argparse.Namespace) -> int:
    from canaryd.console.actions import action_command

    return asyncio.run(action_command(_options(args), args.name, args.action, args.revision,
                                      getattr(args, "full", False), args.timeout))


def _history(args: argparse.Namespace) -> int:
    from canaryd.console.actions import history_command

    return asyncio.run(history_command(_options(args), args.name))


def _dashboard(args: argparse.Namespace) -> int:
    from canaryd.console.dashboard import serve

    return asyncio.run(serve(_options(args), args.address, args.port))


def run(args: argparse.Namespace) -> int:
    """Run the parsed console command; Ctrl-C ends it quietly."""
    _quiet()
    try:
        return int(args.console(args))
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """``kubectl-canary``: kubectl finds it on PATH and runs it for ``kubectl canary ...``."""
    parser = _Parser(prog="kubectl canary", description="Watch, wait for and operate canaryd's releases")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parsers(sub)
    return run(parser.parse_args(list(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    sys.exit(main())
