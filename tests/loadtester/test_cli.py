"""``canaryd loadtester`` flags: defaults, repeatable --allow-command, Go durations, refused values."""

from __future__ import annotations

import pytest

from canaryd.cli import build_parser
from canaryd.loadtester import cli as loadtester_cli


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOADTESTER_TOKEN", "LOADTESTER_PORT", "LOADTESTER_ENABLE_BASH", "LOADTESTER_TIMEOUT",
                 "LOADTESTER_NAMESPACE_REGEXP"):
        monkeypatch.delenv(name, raising=False)
    args = build_parser().parse_args(["loadtester"])
    assert (args.port, args.enable_bash, args.allow_command, args.timeout, args.token, args.namespace_regexp,
            args.gate_state, args.max_commands) == (8080, False, [], 3600.0, "", "", "configmap", 64)
    assert args.handler is loadtester_cli.main


def test_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOADTESTER_TOKEN", "from-env")
    args = build_parser().parse_args([
        "loadtester", "--port", "9090", "--enable-bash", "--allow-command", "curl", "--allow-command",
        "/usr/bin/wrk", "--timeout", "1m30s", "--namespace-regexp", "^test$", "--state-namespace", "tools",
        "--kubeconfig", "/k", "--gate-state", "memory"])
    assert (args.port, args.enable_bash, args.allow_command, args.timeout, args.namespace_regexp,
            args.state_namespace, args.kubeconfig, args.gate_state, args.token) == \
        (9090, True, ["curl", "/usr/bin/wrk"], 90.0, "^test$", "tools", "/k", "memory", "from-env")


@pytest.mark.parametrize("argv", [
    ["loadtester", "--timeout", "10"],           # a Go duration needs a unit
    ["loadtester", "--namespace-regexp", "(test"],
    ["loadtester", "--gate-state", "etcd"],
])
def test_refused_values(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2
    assert "canaryd loadtester: error:" in capsys.readouterr().err


def test_own_namespace_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "tools")
    assert loadtester_cli._own_namespace() == "tools"
