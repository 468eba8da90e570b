"""Go's ``%v`` renderings of float64 and ``time.Duration``, for Flagger's Halt texts.

Flagger writes thresholds with ``%v`` (``99``, ``1e+06``) and durations with ``Duration.String``
(``1.515s``, ``500ms``, ``1m30s``); users grep for these exact texts, so they are reproduced here.
"""

from __future__ import annotations

import math
from decimal import Decimal


def go_float(v: float) -> str:
    """``fmt.Sprintf("%v", v)`` for a float64: shortest round-trip digits, exponent form iff the
    decimal exponent is < -4 or >= 6 (Go's shortest ``%g`` rule), at least 2 exponent digits."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    sign, digit_tuple, exp = Decimal(repr(v)).as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    exp += len(digit_tuple) - len(digits)  # account for the stripped trailing zeros
    point = len(digits) + exp  # position of the decimal point from the left of ``digits``
    x = point - 1  # decimal exponent in d.ddd form
    neg = "-" if sign else ""
    if x < -4 or x >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{neg}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if point <= 0:
        return f"{neg}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{neg}{digits}{'0' * (point - len(digits))}"
    return f"{neg}{digits[:point]}.{digits[point:]}"


def _frac(value: int, scale: int) -> str:
    """``value/scale`` printed with the fraction's trailing zeros dropped (``1515, 1000 -> 1.515``)."""
    whole, rest = divmod(value, scale)
    if rest == 0:
        return str(whole)
    width = len(str(scale)) - 1
    return f"{whole}.{str(rest).rjust(width, '0').rstrip('0')}"


def go_duration(nanoseconds: int) -> str:
    """``time.Duration(nanoseconds).String()``: ``0s``, ``750ns``, ``1.5µs``, ``500ms``, ``1.515s``,
    ``1m30s``, ``1h0m0s``."""
    if nanoseconds == 0:
        return "0s"
    neg = "-" if nanoseconds < 0 else ""
    u = abs(nanoseconds)
    if u < 1_000:
        return f"{neg}{u}ns"
    if u < 1_000_000:
        return f"{neg}{_frac(u, 1_000)}µs"
    if u < 1_000_000_000:
        return f"{neg}{_frac(u, 1_000_000)}ms"
    secs, ns = divmod(u, 1_000_000_000)
    minutes, s = divmod(secs, 60)
    out = _frac(s * 1_000_000_000 + ns, 1_000_000_000) + "s"
    if minutes:
        hours, m = divmod(minutes, 60)
        out = f"{m}m{out}"
        if hours:
            out = f"{hours}h{out}"
    return neg + out


def go_duration_ms(milliseconds: float) -> str:
    """``time.Duration(ms) * time.Millisecond`` printed, with Go's truncation of the float to int."""
    return go_duration(int(milliseconds) * 1_000_000)
