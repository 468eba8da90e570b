"""Crash points for the durability tests.

``CANARYD_CRASH_AT=after-status-write:3,after-route-write`` makes the process exit hard (as SIGKILL
would: no cleanup, exit code 137) the Nth time (default 1st) it passes that point, so a test can start it
again and check that the run continues from the Canary's status alone."""

from __future__ import annotations

import os


def parse_crash_points(text: str) -> dict[str, int]:
    """``"a:3,b"`` -> ``{"a": 3, "b": 1}``; malformed counts default to 1."""
    out: dict[str, int] = {}
    for item in text.split(","):
        name, _, count = item.strip().partition(":")
        if name:
            out[name] = int(count) if count.isdigit() and int(count) > 0 else 1
    return out


class CrashPoints:
    """Counts passes through each armed point; ``hit(name)`` ends the process when its count is reached."""

    def __init__(self, armed: dict[str, int]) -> None:
        self._remaining = dict(armed)

    def hit(self, name: str) -> None:
        left = self._remaining.get(name)
        if left is None:
            return
        if left > 1:
            self._remaining[name] = left - 1
            return
        os.write(2, f'{{"level":"error","msg":"crash point {name} reached: exiting"}}\n'.encode())
        os._exit(137)
