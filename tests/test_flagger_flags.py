"""Flagger v1.44's flags in Go's spellings, turned into ``canaryd run``'s settings: the exact args of
Flagger's kustomize and Helm deployments (tests/fixtures/flagger_v1_44_args.yaml, from its source), each
flag's spellings, the mesh provider check, ignored flags reported, bad values refused in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from canaryd import cli
from canaryd.flagger_flags import FLAGGER_FLAGS, FlagError, Kind, translate
from canaryd.settings import Settings
from canaryd.version import version

FIXTURE = yaml.safe_load((Path(__file__).parent / "fixtures" / "flagger_v1_44_args.yaml").read_text())


def settings(*args: str) -> tuple[Settings, list[str]]:
    """What ``canaryd run <args>`` would run with (environment variables cleared), and the ignored flags."""
    parser = cli.build_parser()
    out = translate(list(args), cli._takes_value(cli._run_parser(parser)))
    return cli.settings_from_args(parser.parse_args(["run", *out.argv])), out.ignored


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KUBECONFIG", "CANARYD_NAMESPACE", "CANARYD_METRICS_SERVER", "CANARYD_LOG_LEVEL",
                 "CANARYD_LEADER_ELECT", "CANARYD_CONFIG_TRACKING", "SLACK_USER", "CANARYD_PORT"):
        monkeypatch.delenv(name, raising=False)


def test_every_flagger_flag_is_known_with_its_go_kind() -> None:
    assert {name: spec.kind.value for name, spec in FLAGGER_FLAGS.items()} == FIXTURE["flags"]


def test_kustomize_istio_args() -> None:
    s, ignored = settings(*FIXTURE["kustomize_istio"])
    assert (s.log_level, s.include_label_prefix, s.metrics_server) == (
        "info", ("app.kubernetes.io",), "http://prometheus:9090")
    assert ignored == []


def test_helm_default_args() -> None:
    s, ignored = settings(*FIXTURE["helm_defaults"])
    assert (s.log_level, s.metrics_server, s.config_tracking, s.slack_user) == (
        "info", "http://prometheus:9090", True, "flagger")
    assert not s.leader_elect and ignored == []


def test_helm_leader_election_args() -> None:
    s, _ = settings(*FIXTURE["helm_istio_leader_election"])
    assert s.leader_elect and s.leader_election_namespace == "istio-system"


@pytest.mark.parametrize(
    ("args", "field", "value"),
    [
        (["-metrics-server=http://p:9090"], "metrics_server", "http://p:9090"),
        (["--metrics-server=http://p:9090"], "metrics_server", "http://p:9090"),
        (["-metrics-server", "http://p:9090"], "metrics_server", "http://p:9090"),
        (["--metrics-server", "http://p:9090"], "metrics_server", "http://p:9090"),
        (["-kubeconfig", "-odd-name"], "kubeconfig", "-odd-name"),  # a value is never read as a flag
        (["-master=https://api:6443"], "master", "https://api:6443"),
        (["-namespace=team"], "namespace", "team"),
        (["-port=9797"], "port", 9797),
        (["-port", "9797"], "port", 9797),
        (["-selector-labels=app,tier"], "selector_labels", ("app", "tier")),
        (["-include-label-prefix=*"], "include_label_prefix", ("*",)),
        (["-log-level=warn"], "log_level", "warning"),
        (["-log-level=fatal"], "log_level", "error"),
        (["-log-level", "debug"], "log_level", "debug"),
        (["-enable-leader-election"], "leader_elect", True),
        (["-enable-leader-election=true"], "leader_elect", True),
        (["--enable-leader-election=T"], "leader_elect", True),
        (["-enable-leader-election=false"], "leader_elect", False),
        (["-leader-election-namespace=ops"], "leader_election_namespace", "ops"),
        (["-enable-leader-election", "-namespace=team", "-leader-election-namespace=ops"],
         "leader_election_namespace", "team"),  # as Flagger: a namespaced install elects there
        (["-enable-config-tracking=false"], "config_tracking", False),
        (["-enable-config-tracking=0"], "config_tracking", False),
        (["-enable-config-tracking"], "config_tracking", True),
        (["-no-cross-namespace-refs"], "no_cross_namespace_refs", True),
        (["-no-cross-namespace-refs=true"], "no_cross_namespace_refs", True),
        (["--no-cross-namespace-refs=false"], "no_cross_namespace_refs", False),
        (["-slack-url=https://hooks/x"], "slack_url", "https://hooks/x"),
        (["-slack-token", "xoxb"], "slack_token", "xoxb"),
        (["-slack-proxy-url=http://proxy"], "slack_proxy_url", "http://proxy"),
        (["-slack-user=bot"], "slack_user", "bot"),
        (["-slack-channel=alerts"], "slack_channel", "alerts"),
        (["-msteams-url=https://teams/x"], "msteams_url", "https://teams/x"),
        (["-msteams-proxy-url=http://proxy"], "msteams_proxy_url", "http://proxy"),
        (["-event-webhook=http://hook"], "event_webhook", "http://hook"),
        (["-cluster-name=prod"], "cluster_name", "prod"),
        (["-mesh-provider=istio"], "metrics_server", "http://prometheus:9090"),
        (["-mesh-provider", "istio"], "metrics_server", "http://prometheus:9090"),
        (["-mesh-provider="], "metrics_server", "http://prometheus:9090"),
        (["-kubeconfig=/k", "-kubeconfig-service-mesh=/k"], "kubeconfig", "/k"),
        # canaryd's own flags pass through, mixed with Flagger's
        (["--leader-elect", "-metrics-server=http://m"], "leader_elect", True),
        (["--user-agent", "ua/1", "-metrics-server=http://m"], "user_agent", "ua/1"),
        (["-metrics-server=http://m", "--host", "127.0.0.1"], "host", "127.0.0.1"),
        (["--context", "prod"], "context", "prod"),
    ],
)
def test_spellings_take_effect(args: list[str], field: str, value: Any) -> None:
    s, ignored = settings(*args)
    assert getattr(s, field) == value
    assert ignored == []


@pytest.mark.parametrize(
    ("args", "ignored"),
    [
        (["-threadiness=4", "-kubeconfig-qps", "50", "-kubeconfig-burst=0x10"],
         ["-threadiness=4", "-kubeconfig-qps=50", "-kubeconfig-burst=0x10"]),
        (["-control-loop-interval=1m30s", "-zap-replace-globals", "-zap-encoding=console"],
         ["-control-loop-interval=1m30s", "-zap-replace-globals=true", "-zap-encoding=console"]),
        (["-ingress-annotations-prefix=x", "-ingress-class", "nginx"],
         ["-ingress-annotations-prefix=x", "-ingress-class=nginx"]),
        (["-v=2", "-logtostderr=false", "-vmodule", "x=1", "-log_file_max_size=10", "-stderrthreshold=INFO"],
         ["-v=2", "-logtostderr=false", "-vmodule=x=1", "-log_file_max_size=10", "-stderrthreshold=INFO"]),
        (["--add_dir_header", "-alsologtostderr", "-one_output=true", "-skip_headers", "-skip_log_headers",
          "-log_dir=/l", "-log_file=/f", "-log_backtrace_at=a.go:1", "-alsologtostderrthreshold=ERROR",
          "-legacy_stderr_threshold_behavior=false"],
         ["-add_dir_header=true", "-alsologtostderr=true", "-one_output=true", "-skip_headers=true",
          "-skip_log_headers=true", "-log_dir=/l", "-log_file=/f", "-log_backtrace_at=a.go:1",
          "-alsologtostderrthreshold=ERROR", "-legacy_stderr_threshold_behavior=false"]),
    ],
)
def test_unused_flags_are_accepted_and_reported(args: list[str], ignored: list[str]) -> None:
    assert settings(*args)[1] == ignored


def test_every_flag_in_every_spelling_is_accepted() -> None:
    samples = {Kind.BOOL: "true", Kind.STRING: "x", Kind.INT: "3", Kind.UINT: "3", Kind.DURATION: "10s",
               Kind.VALUE: "1"}
    skip = {"version", "log-level", "mesh-provider", "port", "kubeconfig-service-mesh"}  # checked above
    for name, spec in FLAGGER_FLAGS.items():
        if name in skip:
            continue
        value = samples[spec.kind]
        spellings = [[f"-{name}={value}"], [f"--{name}={value}"]]
        spellings += [[f"-{name}"]] if spec.kind is Kind.BOOL else [[f"-{name}", value], [f"--{name}", value]]
        for args in spellings:
            settings(*args)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-mesh-provider=linkerd"], "-mesh-provider=linkerd is not supported: canaryd drives Istio only "
                                     "(-mesh-provider=istio)"),
        (["-mesh-provider", "gatewayapi:v1"], "-mesh-provider=gatewayapi:v1 is not supported"),
        (["-kubeconfig-service-mesh=/other"], "-kubeconfig-service-mesh is not supported"),
        (["-enable-leader-election=yes"], 'invalid boolean value "yes" for -enable-leader-election'),
        (["-threadiness=two"], 'invalid value "two" for -threadiness: want an integer'),
        (["-log_file_max_size=-1"], 'invalid value "-1" for -log_file_max_size: want an unsigned integer'),
        (["-control-loop-interval=10"], 'invalid value "10" for -control-loop-interval: want a duration'),
        (["-log-level=trace"], 'invalid value "trace" for -log-level'),
        (["-metrics-server"], "flag needs an argument: -metrics-server"),
    ],
)
def test_refused(args: list[str], message: str) -> None:
    with pytest.raises(FlagError, match=message.replace("(", r"\(").replace(")", r"\)")):
        translate(args)


def test_version_flag() -> None:
    assert translate(["-version"]).version
    assert not translate(["-version=false"]).version


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from canaryd.cli import flagger_main; sys.exit(flagger_main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60,
                          check=False)


def test_flagger_entry_point_exits_with_one_line() -> None:
    """``/flagger``: no subcommand; -version prints canaryd's version; a refused flag or an unknown one is
    one line on stderr and exit code 2."""
    shown = run_cli("-version")
    assert (shown.returncode, shown.stdout.strip()) == (0, version())
    for args, text in ((["-mesh-provider=linkerd"], "canaryd: -mesh-provider=linkerd is not supported"),
                       (["-no-such-flag=1"], "unrecognized arguments: -no-such-flag=1")):
        proc = run_cli(*args)
        assert proc.returncode == 2
        assert text in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
