"""Go duration strings (``30s``, ``1m30s``, ``500ms``) as Flagger's Canary fields use them.

Parsing lives in the model so defaults are applied in one place; the inverse (Go's
``Duration.String``) is in :mod:`canaryd.engine.messages`, where the Event texts are made.
"""

from __future__ import annotations

import re

_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign
    "μs": 1e-6,  # U+03BC Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


class DurationError(ValueError):
    """The text is not a Go duration."""


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string, as ``time.ParseDuration`` reads it.

    Accepts an optional sign, ``0`` alone, and any sequence of decimal numbers with units
    (``1h2m3.5s``); raises :class:`DurationError` otherwise (a unit is required)."""
    s = text.strip()
    if not s:
        raise DurationError("empty duration")
    sign = 1.0
    if s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise DurationError(f"invalid duration {text!r}")
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None:
            raise DurationError(f"invalid duration {text!r}: expected a number followed by a unit "
                                "(ns, us, ms, s, m, h), e.g. 30s or 1m30s")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total
