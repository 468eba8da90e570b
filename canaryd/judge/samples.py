"""Checks that a judged series has independent samples: the range query's step must be at least the
longest range window in its PromQL (``rate(x[5m])`` at a 1m step gives points that share 4/5 of their
requests, correlated, and a false-fail rate far above the nominal one: docs/judge.md, "Samples")."""

from __future__ import annotations

import re

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000,
             "y": 31_536_000_000}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'|`[^`]*`")
_COMMENT = re.compile(r"#[^\n]*")
# a range selector or a subquery: [5m], [1h30m], [5m:], [5m:30s]
_RANGE = re.compile(r"\[([^\]:]*)(?::[^\]]*)?\]")
_DURATION = re.compile(r"(?:[0-9]+(?:ms|s|m|h|d|w|y))+")
_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")


class WindowError(ValueError):
    """A range window that is not a PromQL duration (an unrendered template variable, say)."""


def duration_ms(text: str) -> int:
    """Milliseconds of a PromQL duration (``5m``, ``1h30m``)."""
    if not _DURATION.fullmatch(text):
        raise WindowError(f"range window [{text}] is not a PromQL duration")
    return sum(int(n) * _UNITS_MS[u] for n, u in _PART.findall(text))


def range_windows_ms(promql: str) -> list[int]:
    """Every range window of the (rendered) query, in ms, string literals and comments ignored."""
    text = _COMMENT.sub("", _STRING.sub('""', promql))
    return [duration_ms(m.group(1).strip()) for m in _RANGE.finditer(text)]


def step_error(promql: str, step_ms: int) -> str | None:
    """Why ``step_ms`` is too short for ``promql``'s windows, or None when the samples are independent."""
    try:
        windows = range_windows_ms(promql)
    except WindowError as e:
        return str(e)
    longest = max(windows, default=0)
    if step_ms < longest:
        return (f"the query's step {_show(step_ms)} is shorter than its rate window {_show(longest)}: "
                f"samples would overlap; use a step of at least {_show(longest)}")
    return None


def _show(ms: int) -> str:
    for unit in ("h", "m", "s"):
        if ms % _UNITS_MS[unit] == 0:
            return f"{ms // _UNITS_MS[unit]}{unit}"
    return f"{ms}ms"
