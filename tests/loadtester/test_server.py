"""The load tester's API on a real loopback server: tasks, refusals that never run, bash, the token, the
namespace filter, gates, capacity and metrics. (Gates kept in a ConfigMap are tested on the bed, e2e.)"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from canaryd.loadtester.gates import GateBook, MemoryGates
from canaryd.loadtester.metrics import LoadTesterMetrics
from canaryd.loadtester.policy import CommandPolicy
from canaryd.loadtester.runner import Runner
from canaryd.loadtester.server import ApiConfig, LoadTesterApi
from canaryd.loadtester.targets import TargetRule

from .target import Target

PY = sys.executable


class Server:
    def __init__(self, api: LoadTesterApi, runner: web.AppRunner) -> None:
        self.api = api
        self.web = runner
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"

    async def post(self, path: str, body: Any = None, *, raw: bytes | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, str]:
        data = raw if raw is not None else (b"" if body is None else orjson.dumps(body))
        async with aiohttp.ClientSession() as s, s.post(self.url + path, data=data, headers=headers) as resp:
            return resp.status, await resp.text()

    async def close(self) -> None:
        await self.api.runner.close()
        await self.web.cleanup()


Factory = Callable[..., Awaitable[Server]]


@pytest.fixture
async def server() -> AsyncIterator[Factory]:
    made: list[Server] = []

    async def make(*, allowed: tuple[str, ...] = (), limit: float = 30.0, max_running: int = 8,
                   targets: TargetRule | None = None, book: GateBook | None = None, **config: Any) -> Server:
        log = logging.getLogger(f"test.loadtester.{len(made)}")
        metrics = LoadTesterMetrics()
        runner = Runner(timeout=limit, max_running=max_running, log=log, metrics=metrics)
        policy = CommandPolicy(allowed=frozenset(allowed), targets=targets or TargetRule())
        api = LoadTesterApi(ApiConfig(**config), policy, runner, MemoryGates(book), metrics, log)
        web_runner = web.AppRunner(api.app(), access_log=None)
        await web_runner.setup()
        await web.TCPSite(web_runner, "127.0.0.1", 0).start()
        made.append(Server(api, web_runner))
        return made[-1]

    yield make
    for s in made:
        await s.close()


async def until(predicate: Callable[[], Any], within: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def task(cmd: str, **meta: str) -> dict[str, Any]:
    return {"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": "x",
            "metadata": {"cmd": cmd, **meta}}


def py(code: str) -> str:
    """A command line running ``code`` with this Python (allowed by its path in the tests)."""
    return f"{shlex.quote(PY)} -c {shlex.quote(code)}"


def metric(text: str, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


async def test_cmd_is_asynchronous_and_not_started_twice(server: Factory, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    s = await server(allowed=(PY,))
    marker = tmp_path / "started"
    cmd = py(f"import pathlib, time; pathlib.Path({str(marker)!r}).touch(); time.sleep(30)")
    began = time.monotonic()
    assert await s.post("/", task(cmd)) == (202, "command started")
    assert time.monotonic() - began < 1.0  # does not wait for the command
    await until(marker.exists, what="the command to start")
    caplog.set_level(logging.INFO)
    status, text = await s.post("/", task(cmd))
    assert (status, text) == (202, f"command skipped {cmd} is already running")
    assert f"command skipped {cmd} is already running" in caplog.text
    assert s.api.runner.active == 1
    # the same command for another canary is another task
    other = {**task(cmd), "name": "other"}
    assert await s.post("/", other) == (202, "command started")
    assert s.api.runner.active == 2
    _, page = await _get(s, "/metrics")
    assert metric(page, 'canaryd_loadtester_commands_total{result="started",type="cmd"}') == 2
    assert metric(page, 'canaryd_loadtester_commands_total{result="skipped",type="cmd"}') == 1
    assert metric(page, "canaryd_loadtester_commands_running") == 2


async def test_finished_command_can_run_again(server: Factory, tmp_path: Path) -> None:
    s = await server(allowed=(PY,))
    log = tmp_path / "runs"
    cmd = py(f"open({str(log)!r}, 'a').write('x')")
    assert (await s.post("/", task(cmd)))[0] == 202
    await until(lambda: log.exists() and log.read_text() == "x" and s.api.runner.active == 0)
    assert await s.post("/", task(cmd)) == (202, "command started")
    await until(lambda: log.read_text() == "xx")


async def _get(s: Server, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as c, c.get(s.url + path, headers=headers) as resp:
        return resp.status, await resp.text()


@pytest.mark.parametrize(("body", "status", "text"), [
    (b"{not json", 400, "error decoding payload"),
    (b'{"name": "podinfo", "namespace": "test"}', 400, "metadata not found in payload"),
    (b'{"metadata": {"type": "helm", "cmd": "x"}}', 400,
     "task type helm is not supported; supported types: cmd, bash"),
    (b'{"metadata": {"type": "X", "cmd": "x"}}', 400, "unknown task type X"),
    (b'{"metadata": {"cmd": "hey -z 10 http://podinfo.test/"}}', 400, 'hey: invalid value "10" for flag -z'),
])
async def test_bad_requests(server: Factory, body: bytes, status: int, text: str) -> None:
    s = await server()
    got_status, got_text = await s.post("/", raw=body)
    assert got_status == status and got_text.startswith(text), got_text


@pytest.mark.parametrize("template", [
    "touch {f}",                      # a program not on the allow-list
    "/usr/bin/touch {f}",             # by path
    "hey http://x/ ; touch {f}",      # shell syntax behind an allowed program
    "hey http://x/ && touch {f}",
    "sh -c 'touch {f}'",
])
async def test_refused_command_answers_403_and_never_runs(server: Factory, tmp_path: Path,
                                                          template: str) -> None:
    s = await server(allowed=(PY,))
    victim = tmp_path / "created"
    cmd = template.format(f=victim)
    status, text = await s.post("/", task(cmd))
    assert status == 403 and text.startswith("command refused: "), text
    # an allowed command sent after it runs to completion; the refused one left no trace
    done = tmp_path / "done"
    assert (await s.post("/", task(py(f"open({str(done)!r}, 'w')"))))[0] == 202
    await until(lambda: done.exists() and s.api.runner.active == 0, what="the allowed command")
    assert not victim.exists()
    _, page = await _get(s, "/metrics")
    assert metric(page, 'canaryd_loadtester_commands_total{result="refused",type="cmd"}') == 1
    assert metric(page, 'canaryd_loadtester_commands_total{result="started",type="cmd"}') == 1


async def test_allow_listed_program_runs(server: Factory, tmp_path: Path) -> None:
    """The positive control of the test above: once listed, the same command does create the file."""
    s = await server(allowed=("touch",))
    victim = tmp_path / "created"
    assert await s.post("/", task(f"touch {victim}")) == (202, "command started")
    await until(victim.exists, what="touch to run")


async def test_bash_is_off_by_default(server: Factory, tmp_path: Path) -> None:
    s = await server(allowed=("bash", "touch"))
    victim = tmp_path / "created"
    status, text = await s.post("/", task(f"touch {victim}", type="bash"))
    assert status == 403 and "bash commands are disabled" in text and "--enable-bash" in text
    assert s.api.runner.active == 0 and not victim.exists()


async def test_bash_when_enabled(server: Factory) -> None:
    s = await server(enable_bash=True)
    assert await s.post("/", task("echo hello | tr a-z A-Z", type="bash", returnCmdOutput="true")) == \
        (200, "HELLO\n")
    assert await s.post("/", task("echo hello", type="bash")) == (200, "")
    assert await s.post("/", task("echo out; echo err >&2; exit 3", type="bash")) == \
        (500, "command echo out; echo err >&2; exit 3 failed: out\nerr\n: exit status 3")


async def test_bash_timeout(server: Factory) -> None:
    s = await server(enable_bash=True, limit=0.5)
    began = time.monotonic()
    status, text = await s.post("/", task("echo started; sleep 20", type="bash"))
    assert time.monotonic() - began < 5
    assert (status, text) == (500, "command echo started; sleep 20 failed: started\n: timed out after 500ms")


async def test_log_cmd_output(server: Factory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    s = await server(allowed=(PY,))
    assert (await s.post("/", task(py("print('output-line-42')"), logCmdOutput="true")))[0] == 202
    await until(lambda: any(getattr(r, "output", "") == "output-line-42\n" for r in caplog.records),
                what="the output in the log")


async def test_hey_through_the_api(server: Factory) -> None:
    target = await Target().start()
    try:
        s = await server(targets=TargetRule(external=True))  # the target is on loopback
        assert await s.post("/", task(f"hey -n 20 -c 2 {target.url}/")) == (202, "command started")
        await until(lambda: len(target.seen) == 20 and s.api.runner.active == 0, 30, "20 requests")
    finally:
        await target.stop()


async def test_bearer_token(server: Factory) -> None:
    s = await server(token="s3cret")
    assert await s.post("/gate/approve", task("x")) == (401, "Unauthorized")
    assert await s.post("/gate/approve", task("x"), headers={"Authorization": "Bearer wrong"}) == \
        (401, "Unauthorized")
    assert await s.post("/gate/approve", task("x"), headers={"Authorization": "Bearer s3cret"}) == (200, "OK")
    basic = "Basic " + base64.b64encode(b"token:s3cret").decode()
    assert await s.post("/gate/approve", task("x"), headers={"Authorization": basic}) == (200, "OK")
    # the way a webhook URL carries it: http://token:s3cret@host/
    host = s.url.removeprefix("http://")
    async with aiohttp.ClientSession() as c, c.post(f"http://token:s3cret@{host}/gate/halt") as resp:
        assert resp.status == 403 and await resp.text() == "Forbidden"
    assert (await s.post("/", task("hey http://x/")))[0] == 401
    assert await _get(s, "/healthz") == (200, "OK")
    assert (await _get(s, "/metrics"))[0] == 200


async def test_namespace_regexp(server: Factory) -> None:
    s = await server(namespace_regexp="^(test|prod)$")
    assert await s.post("/gate/approve", task("x")) == (200, "OK")
    other = {**task("hey http://x/"), "namespace": "dev"}
    assert await s.post("/", other) == (403, "Forbidden")
    assert await s.post("/gate/open", other) == (403, "Forbidden")
    assert await s.post("/gate/approve", other) == (403, "Forbidden")
    assert s.api.runner.active == 0


async def test_gates(server: Factory) -> None:
    s = await server()
    canary = {"name": "podinfo", "namespace": "test"}
    assert await s.post("/gate/approve") == (200, "OK")
    assert await s.post("/gate/halt", canary) == (403, "Forbidden")
    assert await s.post("/gate/check", canary) == (403, "Forbidden")
    assert await s.post("/gate/open", canary) == (202, "gate podinfo.test opened")
    assert await s.post("/gate/check", canary) == (200, "Approved")
    assert await s.post("/gate/check", {**canary, "name": "other"}) == (403, "Forbidden")
    assert await s.post("/rollback/check", canary) == (403, "Forbidden")  # a separate key
    assert await s.post("/rollback/open", canary) == (202, "rollback rollback.podinfo.test opened")
    assert await s.post("/rollback/check", canary) == (200, "Approved")
    assert await s.post("/gate/close", canary) == (202, "gate podinfo.test closed")
    assert await s.post("/gate/check", canary) == (403, "Forbidden")
    assert await s.post("/rollback/close", canary) == (202, "rollback rollback.podinfo.test closed")
    assert await s.post("/rollback/check", canary) == (403, "Forbidden")
    assert await s.post("/gate/open", {"name": "podinfo"}) == (400, "name and namespace are required")
    assert (await s.post("/gate/open", {"name": "a/b", "namespace": "t"}))[0] == 400
    assert (await s.post("/gate/check", raw=b"{"))[0] == 400
    _, page = await _get(s, "/metrics")
    assert metric(page, 'canaryd_loadtester_gate_requests_total{action="check",code="200",gate="gate"}') == 1
    assert metric(page, 'canaryd_loadtester_gate_requests_total{action="check",code="403",gate="gate"}') == 3


async def test_bounded_concurrency(server: Factory) -> None:
    s = await server(allowed=(PY,), max_running=1)
    assert (await s.post("/", task(py("import time; time.sleep(30)"))))[0] == 202
    status, text = await s.post("/", task(py("print(1)")))
    assert status == 503 and "1 commands are running" in text


async def test_missing_program_is_reported(server: Factory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    s = await server(allowed=("no-such-program-xyz",))
    assert (await s.post("/", task("no-such-program-xyz --flag")))[0] == 202
    await until(lambda: 'exec: "no-such-program-xyz": executable file not found in $PATH' in caplog.text)


async def test_canaryd_webhook_client_against_the_load_tester(server: Factory) -> None:
    """canaryd's own webhook caller (analysis.webhooks) and the load tester agree: gates pass/fail with
    the body as the reason, a rollout hook's 202 passes, a refused command fails with its reason, and a
    token carried in the URL's userinfo is accepted."""
    from canaryd.analysis.webhooks import call_webhook, payload
    from canaryd.model.spec import WebhookSpec

    s = await server(token="s3cret", targets=TargetRule(external=True))
    url = s.url.replace("http://", "http://token:s3cret@")
    body = payload(name="podinfo", namespace="test", phase="Progressing", checksum="c", metadata={})
    async with aiohttp.ClientSession() as session:
        check = WebhookSpec("gate", f"{url}/gate/check", type="confirm-promotion")
        got = await call_webhook(session, check, body)
        assert (got.passed, got.message) == (False, "Forbidden")
        opened = await call_webhook(session, WebhookSpec("open", f"{url}/gate/open"), body)
        assert opened.passed
        got = await call_webhook(session, check, body)
        assert (got.passed, got.message) == (True, "Approved")
        hook = WebhookSpec("load", f"{url}/", metadata={"cmd": "hey -n 1 -c 1 http://127.0.0.1:9/"})
        body = payload(name="podinfo", namespace="test", phase="Progressing", checksum="c",
                       metadata=hook.metadata)
        assert (await call_webhook(session, hook, body)).passed
        refused = WebhookSpec("bad", f"{url}/", metadata={"cmd": "curl http://x/"})
        body = payload(name="podinfo", namespace="test", phase="Progressing", checksum="c",
                       metadata=refused.metadata)
        got = await call_webhook(session, refused, body)
        assert not got.passed and got.message.startswith("command refused: 'curl' is not allowed")
        no_token = WebhookSpec("anon", f"{s.url}/gate/approve")
        got = await call_webhook(session, no_token, body)
        assert (got.passed, got.message) == (False, "Unauthorized")


@pytest.mark.parametrize(("cmd", "kind"), [
    ("hey -H 'X: a\x00b' -n 1 -c 1 http://podinfo.test/", "cmd"),  # answered 202, then died in exec
    ("hey -n 1 -c 1 http://podinfo.test/\x1b[0m", "cmd"),
    ("hey -H 'X: a\nb' -n 1 -c 1 http://podinfo.test/", "cmd"),   # a newline inside one argument
    ("echo a\x00b", "bash"),
])
async def test_nonprintable_command_is_400_and_never_starts(server: Factory, cmd: str, kind: str) -> None:
    s = await server(enable_bash=True)
    status, text = await s.post("/", task(cmd, type=kind))
    assert status == 400 and "non-printable character U+00" in text, text
    assert s.api.runner.active == 0
    _, page = await _get(s, "/metrics")
    assert metric(page, "canaryd_loadtester_commands_total{") == 0


@pytest.mark.parametrize(("cmd", "reason"), [
    ("hey -n 1 -c 1 http://169.254.169.254/latest/meta-data/", "target 169.254.169.254 is an IP address"),
    ("hey -n 1 -c 1 http://podinfo.test.evil.example/", "is not an in-cluster Service name"),
    ("hey -n 1 -c 1 http://podinfo.other/", "namespace other is not served"),
    ("hey -n 1 -c 1 http://localhost:8080/gate/open", "target localhost is not an in-cluster Service name"),
])
async def test_hey_reaches_in_cluster_services_only(server: Factory, cmd: str, reason: str) -> None:
    s = await server(targets=TargetRule(namespaces="^test$"))
    status, text = await s.post("/", task(cmd))
    assert status == 403 and reason in text, text
    assert ("--namespace-regexp" if "not served" in reason else "--allow-external-targets") in text
    assert s.api.runner.active == 0


async def test_curl_runs_within_its_allow_list(server: Factory, tmp_path: Path) -> None:
    """curl's refused flags never start it; an accepted command runs with the forced arguments first (a
    real curl, so they are shown to be valid)."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    target = await Target().start()
    try:
        s = await server(allowed=("curl",), targets=TargetRule(external=True))
        written = tmp_path / "written"
        for args, reason in ((f"-s -o {written}", "-o is not a permitted flag"),
                             ("-s -d @/etc/hostname", "a value starting with @ reads a local file"),
                             (f"-K {written}", "-K is not a permitted flag")):
            status, text = await s.post("/", task(f"curl {args} {target.url}/"))
            assert status == 403 and text.startswith("command refused: curl: ") and reason in text, text
        assert await s.post("/", task(f"curl -s -H 'X-Test: 1' -d hello {target.url}/ok")) == \
            (202, "command started")
        await until(lambda: len(target.seen) == 1 and s.api.runner.active == 0, 30, "curl's request")
        assert (target.seen[0].path, target.seen[0].body, target.seen[0].headers["X-Test"]) == \
            ("/ok", b"hello", "1")
        assert not written.exists()
        # files stay out of reach with external targets too
        assert await s.post("/", task("curl -s file:///etc/hostname")) == \
            (403, "command refused: curl: 'file:///etc/hostname': only http and https URLs")
    finally:
        await target.stop()


async def test_gates_beyond_the_cap_answer_507(server: Factory) -> None:
    s = await server(book=GateBook(max_gates=2))
    for name in ("a", "b"):
        assert (await s.post("/gate/open", {"name": name, "namespace": "test"}))[0] == 202
    assert await s.post("/rollback/open", {"name": "c", "namespace": "test"}) == \
        (507, "rollback rollback.c.test not opened: 2 gates are open, the most allowed (--max-gates); "
              "close some or let them expire")
    assert (await s.post("/gate/open", {"name": "a", "namespace": "test"}))[0] == 202  # refresh, not new
    assert (await s.post("/gate/close", {"name": "a", "namespace": "test"}))[0] == 202
    assert (await s.post("/rollback/open", {"name": "c", "namespace": "test"}))[0] == 202
    assert await s.post("/rollback/check", {"name": "c", "namespace": "test"}) == (200, "Approved")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _process(*args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOADTESTER_")}
    argv = [PY, "-m", "canaryd", "loadtester", "--gate-state", "memory", "--host", "127.0.0.1",
            "--port", str(port), *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    return proc, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("args", [["--token-file", "missing"], []])
def test_process_refuses_to_start_without_a_token(args: list[str], tmp_path: Path) -> None:
    from canaryd.loadtester.secure import DEFAULT_TOKEN_FILE

    assert not DEFAULT_TOKEN_FILE.exists()  # the default path, on this machine: nothing there
    proc, _ = _process(*[str(tmp_path / a) if a == "missing" else a for a in args])
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert b"not starting: no token file at" in out and b"--insecure" in out, out


async def test_process_with_a_token_file(tmp_path: Path) -> None:
    """The real command line: requests without the token answer 401 (health and metrics stay open), the
    bearer token and a webhook URL's user info are accepted, a NUL answers 400."""
    token = "t0ken-" + "x" * 26
    (tmp_path / "token").write_text(token + "\n")
    proc, url = _process("--token-file", str(tmp_path / "token"), "--namespace-regexp", "^test$")
    try:
        async with aiohttp.ClientSession() as c:

            async def answer(method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, str]:
                async with c.request(method, path if "://" in path else url + path, json=body, **kw) as r:
                    return r.status, await r.text()

            async def up() -> bool:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else b""
                try:
                    return (await answer("GET", "/healthz"))[0] == 200
                except aiohttp.ClientError:
                    return False

            deadline = time.monotonic() + 30
            while not await up():
                assert time.monotonic() < deadline, "the load tester did not answer /healthz"
                await asyncio.sleep(0.1)
            canary = {"name": "podinfo", "namespace": "test"}
            assert await answer("POST", "/gate/open", canary) == (401, "Unauthorized")
            assert await answer("POST", "/gate/open", canary, headers={"Authorization": "Bearer nope"}) == \
                (401, "Unauthorized")
            bearer = {"Authorization": f"Bearer {token}"}
            assert await answer("POST", "/gate/open", canary, headers=bearer) == \
                (202, "gate podinfo.test opened")
            in_url = url.replace("http://", f"http://token:{token}@")
            assert await answer("POST", in_url + "/gate/check", canary) == (200, "Approved")
            assert await answer("POST", in_url + "/gate/check", {"name": "podinfo", "namespace": "prod"}) == \
                (403, "Forbidden")
            status, text = await answer("POST", in_url + "/", task("hey -d 'a\x00' http://podinfo.test/"))
            assert status == 400 and "U+0000" in text
            assert (await answer("GET", "/metrics"))[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert token.encode() not in out  # never logged
    assert b"non-dumpable" in out
