"""Pure parts of the load tester as tables: hey's flags, shlex splitting and the allow-list, payloads."""

from __future__ import annotations

import base64
import sys
from typing import Any

import pytest

from canaryd.loadtester.heyflags import UNLIMITED, HeyUsageError, parse_hey_args
from canaryd.loadtester.payload import PayloadError, parse_payload, parse_task
from canaryd.loadtester.policy import Command, CommandPolicy, Rejected, shell_operator, split_command

URL = "http://podinfo.test:9898/"


@pytest.mark.parametrize(("argv", "expected"), [
    ([URL], {"requests": 200, "concurrency": 50, "qps": 0.0, "duration": 0.0, "method": "GET",
             "timeout": 20.0, "content_type": "text/html", "per_worker": 4}),
    # the tutorial's webhook
    (["-z", "1m", "-q", "10", "-c", "2", URL], {"duration": 60.0, "qps": 10.0, "concurrency": 2,
                                                 "requests": UNLIMITED}),
    (["-z=10m", "--q=2.5", "-c=4", URL], {"duration": 600.0, "qps": 2.5, "concurrency": 4}),
    (["-n", "103", "-c", "10", URL], {"requests": 103, "per_worker": 10}),
    (["-m", "post", "-d", '{"a": 1}', "-T", "application/json", URL],
     {"method": "POST", "body": b'{"a": 1}', "content_type": "application/json"}),
    (["-H", "Cookie: type=insider", "-H", "X-Id:7", URL],
     {"headers": (("Cookie", "type=insider"), ("X-Id", "7"))}),
    (["-A", "text/plain", "-a", "u:p", URL],
     {"headers": (("Accept", "text/plain"),
                  ("Authorization", "Basic " + base64.b64encode(b"u:p").decode()))}),
    (["-host", "app.example.com", "-t", "3", "-x", "127.0.0.1:3128", URL],
     {"host": "app.example.com", "timeout": 3.0, "proxy": "127.0.0.1:3128"}),
    (["-disable-keepalive", "-disable-compression", "-disable-redirects=true", URL],
     {"disable_keepalive": True, "disable_compression": True, "disable_redirects": True}),
    (["-disable-keepalive=false", URL], {"disable_keepalive": False}),
    (["-h2", "-cpus", "2", URL], {"notes": ("-h2 ignored: requests use HTTP/1.1", "-cpus ignored")}),
    (["-c", "2", "--", URL], {"concurrency": 2, "url": URL}),
    # Go's flag package stops at the first non-flag: what follows the URL is ignored, as in hey
    ([URL, "-c", "2"], {"concurrency": 50}),
])
def test_hey_flags(argv: list[str], expected: dict[str, Any]) -> None:
    opts = parse_hey_args(argv)
    for key, value in expected.items():
        assert getattr(opts, key) == value, key


@pytest.mark.parametrize(("argv", "message"), [
    ([], "missing URL"),
    (["-z", "1m"], "missing URL"),
    (["podinfo.test:9898"], "invalid URL"),
    (["-n", "10", "-c", "20", URL], "-n cannot be less than -c."),
    (["-n", "0", URL], "-n and -c cannot be smaller than 1."),
    (["-c", "5000", URL], "more than the 1000 workers"),
    (["-z", "10", URL], 'invalid value "10" for flag -z'),
    (["-z", "25h", URL], "longer than the 24h"),
    (["-q", "fast", URL], 'invalid value "fast" for flag -q'),
    (["-c"], "flag needs an argument: -c"),
    (["-o", "csv", URL], "flag provided but not defined: -o"),
    (["-H", "no colon", URL], "could not parse the provided input; input = no colon"),
    (["-m", "BREW", URL], "unsupported method BREW"),
    (["-disable-keepalive=maybe", URL], 'invalid boolean value "maybe"'),
    (["---c", "2", URL], "bad flag syntax"),
])
def test_hey_flag_errors(argv: list[str], message: str) -> None:
    with pytest.raises(HeyUsageError) as err:
        parse_hey_args(argv)
    assert message in str(err.value)


@pytest.mark.parametrize(("text", "words"), [
    ("hey -z 1m -q 10 -c 2 http://podinfo.test:9898/", ["hey", "-z", "1m", "-q", "10", "-c", "2", URL]),
    ("hey -H 'Cookie: type=insider' " + URL, ["hey", "-H", "Cookie: type=insider", URL]),
    ("curl -sd 'test' http://podinfo-canary/token", ["curl", "-sd", "test", "http://podinfo-canary/token"]),
    ('hey -m POST -d "{\\"a\\": \\"b;c\\"}" ' + URL, ["hey", "-m", "POST", "-d", '{"a": "b;c"}', URL]),
    ("  ", []),
])
def test_split(text: str, words: list[str]) -> None:
    assert split_command(text) == words


@pytest.mark.parametrize(("text", "operator"), [
    ("hey " + URL, None),
    ("curl -s http://x/ | grep token", "|"),
    ("curl -s http://x/|grep token", "|"),
    ("true && touch /tmp/x", "&&"),
    ("true; touch /tmp/x", ";"),
    ("echo hi > /tmp/x", ">"),
    ("sleep 10 &", "&"),
    ("hey -d 'a;b|c' " + URL, None),  # quoted: an argument, not syntax
    ('hey -H "X: a&&b" ' + URL, None),
])
def test_shell_operator(text: str, operator: str | None) -> None:
    assert shell_operator(text) == operator


POLICY = CommandPolicy(allowed=frozenset({"curl", "/usr/bin/true"}), hey_argv=("HEY",))


@pytest.mark.parametrize(("text", "expected"), [
    # in-cluster only: hey follows no redirects, curl gets its forced arguments first
    ("hey -z 1m -q 10 -c 2 " + URL, ("HEY", "-disable-redirects", "-z", "1m", "-q", "10", "-c", "2", URL)),
    ("curl -s http://podinfo.test:9898/", ("curl", "-q", "--proto", "=http,https", "--proto-redir",
                                           "=http,https", "-s", "http://podinfo.test:9898/")),
    ("/usr/bin/true", ("/usr/bin/true",)),
    ("wrk -d 10s " + URL, Rejected(403, "command refused: 'wrk' is not allowed; the load tester runs the "
                                        "built-in hey and programs listed with --allow-command "
                                        "(listed: /usr/bin/true, curl)")),
    ("/usr/bin/curl -s " + URL, 403),  # listed by name only: a path is another program
    ("true", 403),
    ("FOO=1 curl " + URL, 403),  # no shell: an assignment is not a program
    ("curl -s http://x/ | sh", 403),
    ("hey -o csv " + URL, Rejected(400, "hey: flag provided but not defined: -o")),
    ("hey 'unclosed", Rejected(400, "command \"hey 'unclosed\" cannot be split: No closing quotation")),
    ("", Rejected(400, "cmd is empty")),
])
def test_policy(text: str, expected: tuple[str, ...] | Rejected | int) -> None:
    got = POLICY.resolve(text)
    if isinstance(expected, tuple):
        assert isinstance(got, Command) and got.argv == expected and got.text == text
    elif isinstance(expected, int):
        assert isinstance(got, Rejected) and got.status == expected, got
    else:
        assert got == expected


def test_default_policy_runs_hey_as_a_python_child() -> None:
    got = CommandPolicy().resolve("hey -n 10 -c 1 " + URL)
    assert isinstance(got, Command) and got.hey is not None and got.hey.requests == 10
    assert got.argv[:3] == (sys.executable, "-m", "canaryd.loadtester.hey")
    assert isinstance(CommandPolicy().resolve("curl " + URL), Rejected)


@pytest.mark.parametrize(("body", "status", "reason"), [
    (b"{", 400, "error decoding payload"),
    (b"[1]", 400, "error decoding payload: expected a JSON object"),
    (b"", 400, "error decoding payload: empty body"),
    (b'{"name": "podinfo", "namespace": "test"}', 400, "metadata not found in payload"),
    (b'{"metadata": "cmd"}', 400, "error decoding payload: metadata must be an object"),
    (b'{"metadata": {"type": "cmd"}}', 400, "cmd not found in metadata"),
    (b'{"metadata": {"type": "helm", "cmd": "upgrade x"}}', 400,
     "task type helm is not supported; supported types: cmd, bash"),
    (b'{"metadata": {"type": "kubectl", "cmd": "get pods"}}', 400, "task type kubectl is not supported"),
    (b'{"metadata": {"type": "ngrinder"}}', 400, "task type ngrinder is not supported"),
    (b'{"metadata": {"type": "concord"}}', 400, "task type concord is not supported"),
    (b'{"metadata": {"type": "wrk", "cmd": "x"}}', 400, "unknown task type wrk"),
])
def test_payload_errors(body: bytes, status: int, reason: str) -> None:
    with pytest.raises(PayloadError) as err:
        parse_task(parse_payload(body))
    assert err.value.status == status and str(err.value).startswith(reason)


@pytest.mark.parametrize(("metadata", "task"), [
    ({"cmd": "hey " + URL}, ("cmd", "hey " + URL, False, False)),
    ({"type": "cmd", "cmd": "x", "logCmdOutput": "true"}, ("cmd", "x", True, False)),
    ({"type": "bash", "cmd": "x", "returnCmdOutput": "True", "logCmdOutput": "0"},
     ("bash", "x", False, True)),
    ({"type": "bash", "cmd": "x", "returnCmdOutput": True}, ("bash", "x", False, True)),  # YAML bool
    ({"type": "", "cmd": "x"}, ("cmd", "x", False, False)),
])
def test_tasks(metadata: dict[str, Any], task: tuple[str, str, bool, bool]) -> None:
    import orjson

    body = orjson.dumps({"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": "abc",
                        "metadata": metadata})
    payload = parse_payload(body)
    assert payload.canary == "podinfo.test" and payload.phase == "Progressing" and payload.checksum == "abc"
    got = parse_task(payload)
    assert (got.type, got.cmd, got.log_output, got.return_output) == task


def test_empty_body_allowed_for_constant_gates() -> None:
    assert parse_payload(b"", allow_empty=True).canary == "."
