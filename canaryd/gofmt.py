"""Go's ``fmt`` of a float64 and ``time.Duration.String()``, for texts that must read as Flagger's.

Flagger's Events and the load tester's answers are Go ``fmt`` strings: ``%v`` of a float64 and a
duration have their own shapes (``1e+06``, ``1.515s``, ``1m30s``) that Python's defaults do not produce,
and users grep for these texts. Behaviour checked against Go 1.26: ``%v`` of a float64 is ``%g`` with the
shortest round-trip digits and the exponent form when the decimal exponent is < -4 or >= 6 (not 21).
Used by the engine's messages, the analysis Halt texts and the load tester (which must not import the
engine to print a duration).
"""

from __future__ import annotations

import math
from decimal import Decimal

NS_PER_SECOND = 1_000_000_000


def go_float(x: float) -> str:
    """Go's ``fmt.Sprintf("%v", x)`` for a float64: 99 → ``99``, 99.5 → ``99.5``, 1e6 → ``1e+06``,
    1234567 → ``1.234567e+06``, 0.00001 → ``1e-05``, NaN → ``NaN``, inf → ``+Inf``."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(x)).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).lstrip("0") or "0"
    # repr may carry trailing zeros ("100.0"): strip them, moving them into the exponent.
    stripped = digits.rstrip("0") or "0"
    exponent += len(digits) - len(stripped)
    digits = stripped
    point = len(digits) + exponent  # position of the decimal point relative to the digits
    exp10 = point - 1
    neg = "-" if sign else ""
    if exp10 < -4 or exp10 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        esign = "-" if exp10 < 0 else "+"
        return f"{neg}{mantissa}e{esign}{abs(exp10):02d}"
    if point <= 0:
        return f"{neg}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{neg}{digits}{'0' * (point - len(digits))}"
    return f"{neg}{digits[:point]}.{digits[point:]}"


def go_duration(ns: int) -> str:
    """Go's ``time.Duration(ns).String()``: ``1.515s``, ``500ms``, ``1m30s``, ``1h0m0s``, ``0s``."""
    if ns == 0:
        return "0s"
    neg = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1000:
        return f"{neg}{u}ns"
    if u < 1_000_000:
        return f"{neg}{_decimal(u, 1000)}µs"
    if u < NS_PER_SECOND:
        return f"{neg}{_decimal(u, 1_000_000)}ms"
    hours, rest = divmod(u, 3600 * NS_PER_SECOND)
    minutes, rest = divmod(rest, 60 * NS_PER_SECOND)
    seconds = _decimal(rest, NS_PER_SECOND) + "s"
    if hours:
        return f"{neg}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{neg}{minutes}m{seconds}"
    return f"{neg}{seconds}"


def go_duration_seconds(seconds: float) -> str:
    """:func:`go_duration` of a number of seconds (rounded to the nanosecond)."""
    return go_duration(round(seconds * NS_PER_SECOND))


def _decimal(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if frac == 0:
        return str(whole)
    width = len(str(unit)) - 1
    return f"{whole}.{str(frac).rjust(width, '0').rstrip('0')}"
