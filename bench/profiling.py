"""A CPU profile of the operator during a run (issue 16: profile, fix what dominates, record the top frames
before and after): ``py-spy record`` attached to the operator's pid for the run's window, raw stack counts
folded into the frames with the most samples, on their own (self) and with what they call (inclusive)."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Profile:
    path: str
    samples: int = 0
    top_self: list[tuple[str, int]] = field(default_factory=list)
    top_inclusive: list[tuple[str, int]] = field(default_factory=list)


class Profiler:
    """``py-spy record`` of one process (100 Hz, active samples only) until :meth:`stop`."""

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None
        exe = shutil.which("py-spy")
        if exe is None:
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [exe, "record", "-p", str(pid), "-r", str(rate), "-f", "raw", "-o", str(out), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self, limit: int = 15) -> Profile | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGINT)  # py-spy writes what it sampled on SIGINT
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None
        return fold(self.out, limit) if self.out.exists() else None


def frame_name(frame: str) -> str:
    """``func (path/to/module.py:123)`` → ``func (module.py)``: lines of one function count together."""
    func, _, where = frame.partition(" (")
    module = where.split(":")[0].rsplit("/", 1)[-1].rstrip(")")
    return f"{func} ({module})" if module else func


def fold(path: Path, limit: int = 15) -> Profile:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [frame_name(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n
    return Profile(str(path), total, own.most_common(limit), inclusive.most_common(limit + 10))


def markdown(title: str, profile: Profile) -> list[str]:
    """A table of the top frames, with shares of the active samples."""
    if not profile.samples:
        return [f"### {title}", "", "no active samples", ""]
    lines = [f"### {title}", "", f"{profile.samples} active samples at 100 Hz (py-spy; idle waits left out).",
             "", "| frame | self | inclusive |", "|---|---|---|"]
    inclusive = dict(profile.top_inclusive)
    names = [name for name, _ in profile.top_self]
    names += [name for name, _ in profile.top_inclusive if name not in names and "runpy" not in name]
    own = dict(profile.top_self)
    for name in names[:25]:
        s, i = own.get(name), inclusive.get(name)
        lines.append(f"| `{name}` | {_share(s, profile.samples)} | {_share(i, profile.samples)} |")
    return [*lines, ""]


def _share(count: int | None, total: int) -> str:
    return "–" if count is None else f"{100 * count / total:.1f} %"
