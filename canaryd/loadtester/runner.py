"""Running commands as child processes: without a shell (unless given ``bash -c``), each in its own
process group so a timeout or shutdown ends the whole tree, with bounded concurrency and at most one
run of the same command for the same canary at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from canaryd.gofmt import go_duration_seconds
from canaryd.loadtester.metrics import LoadTesterMetrics

MAX_OUTPUT = 1024 * 1024  # bytes of output kept per command; the rest is read and dropped
SECRET_ENV = frozenset({"LOADTESTER_TOKEN"})


class Busy(Exception):
    """``max_running`` commands are running already."""


@dataclass(frozen=True)
class Outcome:
    """How a command ended: ``error`` is Go-like (``exit status 1``, ``signal: killed``), empty on success."""

    ok: bool
    output: str
    error: str = ""


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment commands get: the load tester's own (proxy variables included), minus secrets."""
    return {k: v for k, v in env.items() if k not in SECRET_ENV}


class Runner:
    """Starts commands; ``start`` for fire-and-forget (``cmd``), ``run`` to wait for the result (``bash``)."""

    def __init__(self, *, timeout: float, max_running: int, log: logging.Logger,
                 metrics: LoadTesterMetrics, env: Mapping[str, str] | None = None) -> None:
        self.timeout = timeout
        self.max_running = max_running
        self.log = log
        self.metrics = metrics
        self.env = child_env(os.environ if env is None else env)
        self._active = 0
        self._tasks: dict[tuple[str, str], asyncio.Task[Outcome]] = {}
        self._blocking: set[asyncio.Task[Outcome]] = set()

    @property
    def active(self) -> int:
        return self._active

    def is_running(self, key: tuple[str, str]) -> bool:
        task = self._tasks.get(key)
        return task is not None and not task.done()

    def start(self, key: tuple[str, str], argv: Sequence[str], *, kind: str, text: str,
              log_output: bool) -> bool:
        """Start ``argv`` in the background unless ``key`` (canary, command) is still running: False then.
        Raises :class:`Busy` when the limit is reached."""
        if self.is_running(key):
            self.metrics.commands.labels(kind, "skipped").inc()
            self.log.info("command skipped %s is already running", text, extra={"canary": key[0]})
            return False
        self._reserve(kind)
        task = asyncio.create_task(self._execute(argv, kind=kind, text=text, canary=key[0],
                                                 log_output=log_output))
        self._tasks[key] = task
        task.add_done_callback(lambda t: self._forget(key, t))
        return True

    async def run(self, argv: Sequence[str], *, kind: str, text: str, canary: str,
                  log_output: bool) -> Outcome:
        """Run ``argv`` and wait for it. Raises :class:`Busy` when the limit is reached."""
        self._reserve(kind)
        task = asyncio.create_task(self._execute(argv, kind=kind, text=text, canary=canary,
                                                 log_output=log_output))
        self._blocking.add(task)
        task.add_done_callback(self._blocking.discard)
        return await asyncio.shield(task)

    def _reserve(self, kind: str) -> None:
        if self._active >= self.max_running:
            self.metrics.commands.labels(kind, "busy").inc()
            raise Busy(f"{self._active} commands are running, the most allowed (--max-commands)")
        self._active += 1
        self.metrics.running.set(self._active)
        self.metrics.commands.labels(kind, "started").inc()

    def _forget(self, key: tuple[str, str], task: asyncio.Task[Outcome]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]

    async def _execute(self, argv: Sequence[str], *, kind: str, text: str, canary: str,
                       log_output: bool) -> Outcome:
        extra = {"canary": canary}
        self.log.info("command starting %s", text, extra=extra)
        try:
            outcome = await self._spawn(argv)
        finally:
            self._active -= 1
            self.metrics.running.set(self._active)
        result = "succeeded" if outcome.ok else ("timeout" if "timed out" in outcome.error else "failed")
        self.metrics.commands.labels(kind, result).inc()
        if outcome.ok:
            self.log.info("command finished %s", text, extra=extra)
        else:
            self.log.warning("command failed %s: %s", text, outcome.error, extra=extra)
        if log_output:
            self.log.info("command output %s", text, extra={**extra, "output": outcome.output})
        return outcome

    async def _spawn(self, argv: Sequence[str]) -> Outcome:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, env=self.env, start_new_session=True,
            )
        except FileNotFoundError:
            return Outcome(False, "", f'exec: "{argv[0]}": executable file not found in $PATH')
        except OSError as err:
            return Outcome(False, "", f'exec: "{argv[0]}": {err.strerror or err}')
        except ValueError as err:  # e.g. an embedded NUL; the API refuses those before this point
            return Outcome(False, "", f'exec: "{argv[0]}": {err}')
        chunks: list[bytes] = []
        try:
            async with asyncio.timeout(self.timeout if self.timeout > 0 else None):
                await _read(proc, chunks)
                code = await proc.wait()
        except TimeoutError:
            _kill_group(proc)
            await proc.wait()
            return Outcome(False, _decode(chunks), f"timed out after {go_duration_seconds(self.timeout)}")
        except asyncio.CancelledError:
            _kill_group(proc)
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
            raise
        if code == 0:
            return Outcome(True, _decode(chunks))
        error = f"signal: {signal.Signals(-code).name[3:].lower()}" if code < 0 else f"exit status {code}"
        return Outcome(False, _decode(chunks), error)

    async def close(self) -> None:
        """End every running command (its process group) and wait for them."""
        tasks = [*self._tasks.values(), *self._blocking]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _read(proc: asyncio.subprocess.Process, chunks: list[bytes]) -> None:
    assert proc.stdout is not None
    kept = 0
    while chunk := await proc.stdout.read(65536):
        if kept < MAX_OUTPUT:
            chunks.append(chunk[: MAX_OUTPUT - kept])
            kept += len(chunks[-1])


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _decode(chunks: list[bytes]) -> str:
    return b"".join(chunks).decode("utf-8", "replace")
