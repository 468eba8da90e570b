"""Go duration strings (``30s``, ``1m30s``, ``500ms``) as Flagger's Canary fields use them.

Parsing lives in the model so defaults are applied in one place; the inverse (Go's
``Duration.String``) is in :mod:`canaryd.engine.messages`, where the Event texts are made.

Durations written in a Canary are read by :func:`parse_spec_duration`, which accepts exactly what the
CRDs accept (``SPEC_PATTERN`` plus the CEL bounds of ``manifests/crd/generate.py``), so a value the API
server would refuse is refused here too, and no value can reach the engine as infinity or overflow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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


# What the CRDs accept for a duration field (Go syntax restricted to whole numbers of ms, s, m, h, so
# PromQL takes the same text as a range), and the longest text (bounds the CRD's CEL cost too).
SPEC_PATTERN = "^([0-9]+(ms|s|m|h))+$"
SPEC_MAX_LENGTH = 64
_SPEC_PART = re.compile(r"([0-9]+)(ms|s|m|h)")
_SPEC_WHOLE = re.compile(r"(?:[0-9]+(?:ms|s|m|h))+")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


@dataclass(frozen=True)
class Bounds:
    """Inclusive bounds of one duration field, as Go duration texts (the CRD's CEL rule uses the same)."""

    low: str
    high: str

    def text(self) -> str:
        return f"between {self.low} and {self.high}"


INTERVAL_BOUNDS = Bounds("1s", "24h")  # analysis.interval and metrics[].interval
WEBHOOK_TIMEOUT_BOUNDS = Bounds("1ms", "10m")  # webhooks[].timeout: a hook's own budget, any interval
INITIAL_DELAY_BOUNDS = Bounds("0s", "24h")  # canaryd: metrics[]/webhooks[].initialDelay
INCONCLUSIVE_TIMEOUT_BOUNDS = Bounds("1s", "24h")  # canaryd: analysis.inconclusiveTimeout


def spec_duration_ms(text: str) -> int:
    """Milliseconds of a duration in the CRDs' syntax; :class:`DurationError` for any other text.

    Exact integer arithmetic: a 60-digit number is a large int, never infinity or an overflow."""
    if len(text) > SPEC_MAX_LENGTH:
        raise DurationError(f"duration is longer than {SPEC_MAX_LENGTH} characters")
    if _SPEC_WHOLE.fullmatch(text) is None:
        raise DurationError(f"invalid duration {text!r}")
    return sum(int(n) * _UNIT_MS[unit] for n, unit in _SPEC_PART.findall(text))


def parse_spec_duration(text: str, bounds: Bounds) -> float:
    """Seconds of a Canary's duration field, refused (:class:`DurationError`) outside the CRD's syntax or
    ``bounds``; the message names the bounds."""
    ms = spec_duration_ms(text)
    if not spec_duration_ms(bounds.low) <= ms <= spec_duration_ms(bounds.high):
        raise DurationError(f"out of bounds: it must be {bounds.text()}")
    return ms / 1000


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
