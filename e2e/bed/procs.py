"""Starting, finding and ending the bed's processes by pid, with a pid file per component.

A pid file holds the pid and the executable, so a pid reused by an unrelated process after a crash
is never signalled."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def terminate(proc: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> int | None:
    """SIGTERM a child and wait ``timeout`` s, then SIGKILL; its exit code (None: never started)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return proc.returncode


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot: with the pid, it names one process for good."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tail(path: Path, lines: int = 20) -> str:
    try:
        rows = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(rows[-lines:])


@dataclass(frozen=True)
class Record:
    """What a pid file says."""

    pid: int
    exe: str

    def matches(self) -> bool:
        """The pid still belongs to the process we started (not reused by another program)."""
        args = cmdline(self.pid)
        return alive(self.pid) and bool(args) and self.exe in args[: 3]


class Procs:
    """The processes of one bed dir: ``run/<name>.pid`` and ``logs/<name>.log``."""

    def __init__(self, bed_dir: Path) -> None:
        self.run_dir = bed_dir / "run"
        self.log_dir = bed_dir / "logs"
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def record(self, name: str) -> Record | None:
        try:
            pid, exe = self.run_dir.joinpath(f"{name}.pid").read_text().splitlines()[:2]
            return Record(int(pid), exe)
        except (OSError, ValueError):
            return None

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.run_dir.glob("*.pid")) if self.run_dir.is_dir() else []

    def start(self, name: str, args: Sequence[str], *, env: Mapping[str, str] | None = None,
              cwd: Path | None = None) -> int:
        """Starts a process in its own session (so it outlives ``python -m e2e up``), output to its log."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path(name).open("ab") as out:
            out.write(f"--- start {time.strftime('%H:%M:%S')}: {' '.join(args)}\n".encode())
            out.flush()
            proc = subprocess.Popen(list(args), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=dict(env) if env is not None else None,
                                    cwd=str(cwd) if cwd else None)
        self._children[name] = proc
        self.run_dir.joinpath(f"{name}.pid").write_text(f"{proc.pid}\n{args[0]}\n")
        return proc.pid

    def running(self, name: str) -> bool:
        rec = self.record(name)
        if rec is None:
            return False
        child = self._children.get(name)
        if child is not None and child.pid == rec.pid:
            return child.poll() is None
        return rec.matches()

    def exit_code(self, name: str) -> int | None:
        child = self._children.get(name)
        return child.poll() if child is not None else None

    def stop(self, name: str, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; removes the pid file. Unknown or dead: just cleans up."""
        rec = self.record(name)
        child = self._children.pop(name, None)
        if rec is not None and (rec.matches() or (child is not None and child.pid == rec.pid)):
            self._signal(rec.pid, signal.SIGTERM if timeout > 0 else signal.SIGKILL)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self._still_there(rec.pid, child):
                time.sleep(0.05)
            if self._still_there(rec.pid, child):
                self._signal(rec.pid, signal.SIGKILL)
                while self._still_there(rec.pid, child):
                    time.sleep(0.05)
        elif child is not None:
            child.poll()
        self.run_dir.joinpath(f"{name}.pid").unlink(missing_ok=True)

    def stop_all(self, order: Sequence[str] = (), grace: Mapping[str, float] | None = None) -> None:
        """Ends everything recorded, the names in ``order`` first (reverse start order), then the rest."""
        for name in [*order, *self.names()]:
            if self.run_dir.joinpath(f"{name}.pid").exists():
                self.stop(name, timeout=(grace or {}).get(name, 15.0))

    def pids(self) -> dict[str, int]:
        return {n: r.pid for n in self.names() if (r := self.record(n)) is not None and self.running(n)}

    @staticmethod
    def _signal(pid: int, sig: signal.Signals) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    @staticmethod
    def _still_there(pid: int, child: subprocess.Popen[bytes] | None) -> bool:
        if child is not None and child.pid == pid:
            return child.poll() is None
        return alive(pid)
