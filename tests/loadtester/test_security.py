"""The load tester's safety rules as tables: in-cluster targets (whole DNS labels), curl's argument
allow-list, non-printable arguments, gate expiry and the cap that keeps the gate ConfigMap bounded; and the
non-dumpable process, shown with a real child reading ``/proc/<parent>/environ``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from canaryd.loadtester.argpolicy import CURL, policy_for
from canaryd.loadtester.gates import (
    MAX_GATES_CEILING,
    GateBook,
    GateFull,
    MemoryGates,
    expiry,
    open_value,
)
from canaryd.loadtester.payload import PayloadError, parse_payload, parse_task
from canaryd.loadtester.policy import Command, CommandPolicy, Rejected
from canaryd.loadtester.secure import presented_token
from canaryd.loadtester.targets import TargetRule

ROOT = Path(__file__).resolve().parents[2]
SERVED = TargetRule(namespaces="^test$")


@pytest.mark.parametrize(("host", "allowed"), [
    ("podinfo.test", True),
    ("podinfo-canary.test", True),
    ("podinfo.test.", True),                          # absolute form
    ("PodInfo.Test", True),                           # DNS is case-insensitive
    ("podinfo.other", False),                         # a namespace this load tester does not serve
    ("example.com", False),                           # two labels, but not a served namespace
    ("podinfo.test.svc", True),
    ("podinfo.other.svc", True),
    ("podinfo.other.svc.cluster.local", True),
    ("pod-0.podinfo.other.svc.cluster.local", True),  # a headless Service's pod
    ("test.svc", False),                              # no Service label
    ("svc.cluster.local", False),
    ("other.svc.cluster.local", False),
    ("podinfo.test.evil.com", False),                 # contains podinfo.test, is not it
    ("podinfo.test.svc.evil.com", False),
    ("evilsvc", False),
    ("podinfo.testsvc", False),
    ("podinfo", False),                               # a single label: search domains decide
    ("localhost", False),
    ("127.0.0.1", False),
    ("169.254.169.254", False),
    ("::1", False),
    ("[::1]", False),
    ("127.1", False),                                 # inet_aton reads these as IPv4 addresses
    ("0x7f.1", False),
    ("10.0.0.1.svc", True),                           # a name, not an address (ends in svc)
    ("metadata.google.internal", False),
    ("kubernetes.default", False),
    ("under_score.test", False),
    ("-bad.test", False),
    ("", False),
])
def test_in_cluster_hosts(host: str, allowed: bool) -> None:
    assert (SERVED.host_refusal(host) is None) is allowed, SERVED.host_refusal(host)
    assert TargetRule(external=True).host_refusal(host) is None


def test_two_labels_follow_the_namespace_filter() -> None:
    assert TargetRule(namespaces="^(test|prod)$").host_refusal("podinfo.prod") is None
    assert TargetRule(namespaces="").host_refusal("podinfo.anything") is None  # all namespaces served
    refusal = SERVED.host_refusal("podinfo.prod")
    assert refusal is not None and "namespace prod is not served" in refusal


@pytest.mark.parametrize(("url", "allowed"), [
    ("http://podinfo.test:9898/", True),
    ("https://user:pw@podinfo.test.svc.cluster.local/x?y=1", True),
    ("http://example.com/", False),
    ("http://169.254.169.254/latest/meta-data/", False),
    ("http://[::1]:8080/", False),
    ("http://podinfo.test@evil.com/", False),         # user info is not the host
    # parsers that could disagree on the host: refused whatever the name
    ("http://169.254.169.254\\@podinfo.test/", False),
    ("http://a@169.254.169.254@podinfo.test/", False),
    ("http://%31%32%37.0.0.1.test/", False),
    ("http://podinfo.test:9898", True),
])
def test_urls(url: str, allowed: bool) -> None:
    assert (SERVED.url_refusal(url) is None) is allowed


HEY = CommandPolicy(hey_argv=("HEY",), targets=SERVED)
OPEN = CommandPolicy(hey_argv=("HEY",), targets=TargetRule(external=True))


@pytest.mark.parametrize(("text", "expected"), [
    ("hey -z 1m -q 10 -c 2 http://podinfo.test:9898/",
     ("HEY", "-disable-redirects", "-z", "1m", "-q", "10", "-c", "2", "http://podinfo.test:9898/")),
    ("hey http://podinfo-canary.test.svc.cluster.local:9898/",
     ("HEY", "-disable-redirects", "http://podinfo-canary.test.svc.cluster.local:9898/")),
    ("hey http://example.com/", "command refused: hey: target example.com"),
    ("hey http://127.0.0.1:9/", "command refused: hey: target 127.0.0.1 is an IP address"),
    ("hey -x 10.0.0.9:3128 http://podinfo.test/", "command refused: hey: target 10.0.0.9 is an IP address"),
    ("hey -x proxy.test:3128 http://podinfo.test/",
     ("HEY", "-disable-redirects", "-x", "proxy.test:3128", "http://podinfo.test/")),
    ("hey -disable-redirects=false http://podinfo.test/", "command refused: hey: redirects are not followed"),
])
def test_hey_targets(text: str, expected: tuple[str, ...] | str) -> None:
    got = HEY.resolve(text)
    if isinstance(expected, tuple):
        assert isinstance(got, Command) and got.argv == expected
    else:
        assert isinstance(got, Rejected) and got.status == 403 and got.reason.startswith(expected), got


def test_external_targets_allowed_by_the_operator() -> None:
    got = OPEN.resolve("hey -disable-redirects=false http://example.com/")
    assert isinstance(got, Command) and got.argv == ("HEY", "-disable-redirects=false", "http://example.com/")


FORCED = ("-q", "--proto", "=http,https", "--proto-redir", "=http,https")
URL = "http://podinfo.test:9898/"


@pytest.mark.parametrize(("args", "refusal"), [
    (["-s", URL], None),
    (["-sS", "-f", URL], None),
    (["-sd", "test", "http://podinfo-canary.test:9898/token"], None),  # Flagger's docs
    (["-XPOST", "-H", "Content-Type: application/json", "--data-raw", "@not-a-file", URL], None),
    (["-d", "a=1", "--data-urlencode", "q=a@b", "-w", "%{http_code}", "-m", "5", URL], None),
    (["-b", "type=insider", "-u", "user:pw", "--retry", "3", URL], None),
    (["podinfo.test:9898/healthz"], None),              # scheme-less: curl's default http
    (["--url", URL], None),
    (["-o", "/tmp/x", URL], "-o is not a permitted flag"),
    (["-so", "/tmp/x", URL], "-o is not a permitted flag"),
    (["--output", "/tmp/x", URL], "--output is not a permitted flag"),
    (["-O", URL], "-O is not a permitted flag"),
    (["-T", "/etc/passwd", URL], "-T is not a permitted flag"),
    (["--upload-file", "/etc/passwd", URL], "--upload-file is not a permitted flag"),
    (["-K", "/tmp/cfg"], "-K is not a permitted flag"),
    (["--config", "/tmp/cfg"], "--config is not a permitted flag"),
    (["-F", "f=@/etc/passwd", URL], "-F is not a permitted flag"),
    (["-D", "/tmp/h", URL], "-D is not a permitted flag"),
    (["-c", "/tmp/jar", URL], "-c is not a permitted flag"),
    (["--trace", "/tmp/t", URL], "--trace is not a permitted flag"),
    (["--proto", "=all", URL], "--proto is not a permitted flag"),
    (["--resolve", "podinfo.test:80:169.254.169.254", URL], "--resolve is not a permitted flag"),
    (["--data=@/etc/passwd", URL], "--data=@/etc/passwd is not a permitted flag"),
    (["--", "-o"], "-- is not a permitted flag"),
    (["-d", "@/var/run/secrets/canaryd-loadtester/token", URL], "-d '@/var/run/secrets"),
    (["--data-binary", "@/etc/passwd", URL], "a value starting with @ reads a local file"),
    (["-d@/etc/passwd", URL], "a value starting with @ reads a local file"),
    (["--data-urlencode", "x@/etc/passwd", URL], "name@file reads a local file"),
    (["-H", "@/etc/passwd", URL], "a value starting with @ reads a local file"),
    (["-b", "/tmp/cookies", URL], "a cookie without = names a file to read"),
    (["-w", "%output{/tmp/x}%{http_code}", URL], "%output{} writes a local file"),
    (["-w", "@/tmp/fmt", URL], "a value starting with @ reads a local file"),
    (["file:///etc/passwd"], "only http and https URLs"),
    (["-x", "socks5://podinfo.test:1080", URL], "only http and https URLs"),
    (["http://169.254.169.254/"], "is an IP address"),
    (["http://example.com/"], "target example.com"),
    (["-x", "http://10.0.0.1:3128", URL], "is an IP address"),
    (["-L", URL], "-L follows redirects, allowed only with --allow-external-targets"),
    (["-sL", URL], "-L follows redirects"),
    (["-d"], "-d needs a value"),
])
def test_curl_allow_list(args: list[str], refusal: str | None) -> None:
    got = CURL.check(args, SERVED)
    if refusal is None:
        assert got == (*FORCED, *args)
    else:
        assert isinstance(got, str) and refusal in got, got


def test_curl_with_external_targets() -> None:
    assert CURL.check(["-sL", "http://example.com/"], TargetRule(external=True)) == \
        (*FORCED, "-sL", "http://example.com/")
    # files stay out of reach whatever the targets
    assert isinstance(CURL.check(["-o", "/tmp/x", "http://example.com/"], TargetRule(external=True)), str)


def test_policies_by_program_name() -> None:
    assert policy_for("curl") is CURL and policy_for("/usr/bin/curl") is CURL
    assert policy_for("wrk") is None  # no shipped policy: arguments unchecked (documented)
    policy = CommandPolicy(allowed=frozenset({"/usr/bin/curl", "wrk"}), targets=SERVED)
    got = policy.resolve("/usr/bin/curl -o /tmp/x " + URL)
    assert got == Rejected(403, "command refused: /usr/bin/curl: -o is not a permitted flag")
    got = policy.resolve("wrk -d 10s http://example.com/")
    assert isinstance(got, Command) and got.argv == ("wrk", "-d", "10s", "http://example.com/")


@pytest.mark.parametrize(("cmd", "status", "reason"), [
    ("hey -H 'X: a\x00b' " + URL, 400, "cmd has a non-printable character U+0000 at offset 12"),
    ("hey\x00 " + URL, 400, "cmd has a non-printable character U+0000"),
    ("hey -d '\x1b[31m' " + URL, 400, "cmd has a non-printable character U+001B"),
    ("hey -d 'a\u200bb' " + URL, 400, "cmd has a non-printable character U+200B"),
])
def test_nonprintable_commands_are_bad_requests(cmd: str, status: int, reason: str) -> None:
    body = orjson.dumps({"name": "podinfo", "namespace": "test", "metadata": {"cmd": cmd}})
    with pytest.raises(PayloadError) as err:
        parse_task(parse_payload(body))
    assert err.value.status == status and str(err.value).startswith(reason), err.value


def test_nonprintable_arguments_are_refused_by_the_policy() -> None:
    # a newline quoted into one argument passes the payload (bash scripts span lines), not the policy
    got = HEY.resolve("hey -H 'X: a\nb' " + URL)
    assert got == Rejected(400, "argument 2 of the command has a non-printable character U+000A")
    assert isinstance(HEY.resolve("hey -c 2\n" + URL), Command)  # a newline between words is a space


@pytest.mark.parametrize(("headers", "token"), [
    ({"Authorization": "Bearer abc"}, "abc"),
    ({"Authorization": "bearer  abc "}, "abc"),
    ({"Authorization": "Basic dG9rZW46YWJj"}, "abc"),   # token:abc, i.e. http://token:abc@host/
    ({"Authorization": "Basic OmFiYw=="}, "abc"),       # :abc, no user name
    ({"Authorization": "Basic !!"}, ""),
    ({"Authorization": "Digest abc"}, ""),
    ({}, ""),
])
def test_presented_token(headers: dict[str, str], token: str) -> None:
    assert presented_token(headers) == token


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("data", "gate", "is_open", "patch"), [
    ({}, "a.t", True, {"a.t": "open until 2027-01-15T08:01:40Z"}),
    ({"a.t": "open until 2027-01-15T08:00:00Z"}, "a.t", True, {"a.t": "open until 2027-01-15T08:01:40Z"}),
    ({"a.t": "open until 2027-01-15T08:00:00Z"}, "a.t", False, {"a.t": None}),
    # expired keys go with any write; a plain "open" (written before expiries) gets one
    ({"old.t": "open until 2027-01-15T07:59:59Z", "legacy.t": "open", "junk.t": "yes"}, "a.t", False,
     {"old.t": None, "legacy.t": "open until 2027-01-15T08:01:40Z", "junk.t": None, "a.t": None}),
])
def test_gate_plan(data: dict[str, str], gate: str, is_open: bool, patch: dict[str, Any]) -> None:
    now = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    assert GateBook(ttl=100, max_gates=10).plan(data, gate, is_open, now) == patch


def test_gate_values() -> None:
    assert open_value(1_800_000_000.2) == "open until 2027-01-15T08:00:01Z"  # rounded up, never early
    assert expiry("open until 2027-01-15T08:00:00Z") == 1_800_000_000.0
    assert expiry("open") == float("inf") and expiry("open until never") == 0.0


async def test_gates_expire() -> None:
    clock = Clock()
    gates = MemoryGates(GateBook(ttl=60, max_gates=10), clock)
    await gates.set("podinfo.test", True)
    clock.now += 59
    assert await gates.is_open("podinfo.test")
    clock.now += 1
    assert not await gates.is_open("podinfo.test")
    assert "podinfo.test" in gates.data  # read-only checks leave it; the next write removes it
    await gates.set("other.test", True)
    assert list(gates.data) == ["other.test"]


async def test_gate_configmap_stays_bounded() -> None:
    """The most gates allowed, each with the longest key, fit the ConfigMap's 1 MiB with room to spare;
    one more is refused; expired ones make room again."""
    clock = Clock()
    book = GateBook(ttl=3600, max_gates=MAX_GATES_CEILING)
    gates = MemoryGates(book, clock)
    longest = [f"rollback.{'n' * (244 - 8 - len(str(i)))}{i}.ns-{i:04d}"[:253]
               for i in range(MAX_GATES_CEILING)]
    assert max(map(len, longest)) == 253  # a ConfigMap key's limit
    for key in longest[:3]:
        await gates.set(key, True)
    gates.data.update({key: open_value(clock.now + 3600) for key in longest})  # as 2,000 opens leave it
    with pytest.raises(GateFull):
        await gates.set("one.more", True)
    await gates.set(longest[0], True)  # re-opening an open gate is not a new one
    size = len(orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap", "data": gates.data}))
    print(f"\n{len(gates.data)} gates with 253-byte keys: {size / 1024:.0f} KiB")
    assert size < 800 * 1024
    clock.now += 3600
    await gates.set("one.more", True)
    assert gates.data == {"one.more": open_value(clock.now + 3600)}


def _python_for(user_switch: bool) -> str | None:
    if not user_switch:
        return sys.executable
    return shutil.which("python3", path="/usr/bin:/bin")  # one the unprivileged user can execute


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
@pytest.mark.parametrize("nondumpable", [False, True])
def test_children_cannot_read_a_nondumpable_parent(nondumpable: bool) -> None:
    """A child of the same user reads its parent's /proc/<pid>/environ, until the parent is made
    non-dumpable (the load tester does so first thing). Root (CAP_SYS_PTRACE) reads anything, so as root
    both run as nobody, as the pod does (runAsNonRoot, all capabilities dropped)."""
    as_root = os.geteuid() == 0
    python = _python_for(as_root)
    if python is None:
        pytest.skip("no python3 an unprivileged user can run")
    code = (
        "import os, subprocess, sys\n"
        "from canaryd.loadtester.secure import is_dumpable, set_nondumpable\n"
        "if sys.argv[1] == 'yes':\n"
        "    set_nondumpable()\n"
        "child = ('import os\\ntry:\\n    open(f\"/proc/{os.getppid()}/environ\", \"rb\").read()\\n'\n"
        "         '    print(\"read\")\\nexcept OSError:\\n    print(\"denied\")')\n"
        "out = subprocess.run([sys.executable, '-c', child], capture_output=True, text=True).stdout\n"
        "print(is_dumpable(), out.strip())\n"
    )

    def nobody() -> None:
        os.setgid(65534)
        os.setuid(65534)

    got = subprocess.run([python, "-c", code, "yes" if nondumpable else "no"], capture_output=True, text=True,
                         timeout=60, cwd="/", env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                                   "SENTINEL": "x"},
                         preexec_fn=nobody if as_root else None, check=False)
    assert got.returncode == 0, got.stderr
    assert got.stdout.split() == (["False", "denied"] if nondumpable else ["True", "read"])
