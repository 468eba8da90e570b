"""``canaryd loadtester`` flags: defaults, repeatable --allow-command, Go durations, refused values; the
token (a file, never the environment; --insecure to go without) and the namespace filter's default."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from canaryd.cli import build_parser
from canaryd.loadtester import cli as loadtester_cli
from canaryd.loadtester.secure import TokenError

ENV = ("LOADTESTER_TOKEN", "LOADTESTER_PORT", "LOADTESTER_ENABLE_BASH", "LOADTESTER_TIMEOUT",
       "LOADTESTER_NAMESPACE_REGEXP", "POD_NAMESPACE")
TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["loadtester", *argv])


def test_defaults() -> None:
    args = parse()
    assert (args.port, args.enable_bash, args.allow_command, args.timeout, args.token_file, args.insecure,
            args.namespace_regexp, args.gate_state, args.max_commands, args.allow_external_targets,
            args.gate_ttl, args.max_gates) == \
        (8080, False, [], 3600.0, None, False, None, "configmap", 64, False, 86400.0, 1000)
    assert args.handler is loadtester_cli.main


def test_flags() -> None:
    args = parse("--port", "9090", "--enable-bash", "--allow-command", "curl", "--allow-command",
                 "/usr/bin/wrk", "--timeout", "1m30s", "--namespace-regexp", "^test$", "--state-namespace",
                 "tools", "--kubeconfig", "/k", "--gate-state", "memory", "--token-file", "/t",
                 "--allow-external-targets", "--gate-ttl", "2h", "--max-gates", "50")
    assert (args.port, args.enable_bash, args.allow_command, args.timeout, args.namespace_regexp,
            args.state_namespace, args.kubeconfig, args.gate_state, args.token_file,
            args.allow_external_targets, args.gate_ttl, args.max_gates) == \
        (9090, True, ["curl", "/usr/bin/wrk"], 90.0, "^test$", "tools", "/k", "memory", Path("/t"), True,
         7200.0, 50)


@pytest.mark.parametrize("argv", [
    ["--timeout", "10"],           # a Go duration needs a unit
    ["--namespace-regexp", "(test"],
    ["--gate-state", "etcd"],
    ["--token", "s3cret"],         # a token on the command line is readable by every process
    ["--max-gates", "0"],
    ["--max-gates", "5000"],       # more could fill the ConfigMap's 1 MiB
    ["--gate-ttl", "forever"],
])
def test_refused_values(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse(*argv)
    assert exit_.value.code == 2
    assert "canaryd loadtester: error:" in capsys.readouterr().err


def test_own_namespace_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "tools")
    assert loadtester_cli._own_namespace() == "tools"


@pytest.mark.parametrize(("argv", "env", "expected"), [
    ([], {"POD_NAMESPACE": "tools"}, "^tools$"),
    (["--state-namespace", "team.a"], {"POD_NAMESPACE": "tools"}, r"^team\.a$"),
    (["--namespace-regexp", ".*"], {}, ".*"),
    (["--namespace-regexp", ""], {}, ""),  # all, said explicitly
    ([], {"LOADTESTER_NAMESPACE_REGEXP": "^(a|b)$", "POD_NAMESPACE": "tools"}, "^(a|b)$"),
])
def test_namespace_filter_defaults_to_its_own_namespace(argv: list[str], env: dict[str, str], expected: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert loadtester_cli.namespace_filter(parse(*argv)) == expected


@pytest.mark.parametrize(("content", "extra", "env", "outcome"), [
    (TOKEN + "\n", [], {}, TOKEN),                          # a trailing newline (echo > file) is dropped
    (None, ["--insecure"], {}, ""),
    (None, [], {}, "no token file at"),
    ("", [], {}, "is empty"),
    ("short", [], {}, "shorter than 16 characters"),
    ("a/b+c=" * 4, [], {}, "has characters other than"),  # would break a webhook URL's user info
    (TOKEN, ["--insecure"], {}, "contradict"),
    (TOKEN, [], {"LOADTESTER_TOKEN": TOKEN}, "never read from the environment"),
    (None, ["--insecure"], {"LOADTESTER_TOKEN": TOKEN}, "never read from the environment"),
])
def test_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None, extra: list[str],
               env: dict[str, str], outcome: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    argv = [*extra] if "--insecure" in extra and content is None else [*extra, "--token-file", str(path)]
    args = parse(*argv)
    if outcome in ("", TOKEN):
        assert loadtester_cli.token_of(args) == outcome
        return
    with pytest.raises(TokenError) as err:
        loadtester_cli.token_of(args)
    assert outcome in str(err.value)
    if "environment" not in outcome and "contradict" not in outcome:
        assert "--insecure" in str(err.value)  # the way out is named
