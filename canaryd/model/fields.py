"""Readers of one raw Canary field each, for the parsers in ``parse``, ``parse_service`` and
``parse_analysis``: each checks the JSON type, applies the default and, on a bad value, raises
:class:`FieldError` with a message that names the field, so every parser reports errors the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from canaryd.model.durations import (
    SPEC_MAX_LENGTH,
    Bounds,
    DurationError,
    parse_go_duration,
    parse_spec_duration,
    spec_duration_ms,
)
from canaryd.model.spec import JSON


class FieldError(Exception):
    """Carries the user-facing message out of the nested readers."""


def read_obj(v: Any, field: str) -> JSON:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise FieldError(f"{field} must be an object")
    return v


def read_opt_obj(v: Any, field: str) -> JSON | None:
    return None if v is None else read_obj(v, field)


def read_list(v: Any, field: str) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise FieldError(f"{field} must be a list")
    return v


def read_obj_list(v: Any, field: str) -> list[JSON]:
    return [read_obj(x, f"{field}[{i}]") for i, x in enumerate(read_list(v, field))]


def read_str_list(v: Any, field: str) -> list[str]:
    out = []
    for i, x in enumerate(read_list(v, field)):
        if not isinstance(x, str):
            raise FieldError(f"{field}[{i}] must be a string")
        out.append(x)
    return out


def read_opt_str(v: Any) -> str | None:
    return None if v in (None, "") else str(v)


def read_bool(v: Any, field: str) -> bool:
    if v is None:
        return False
    if not isinstance(v, bool):
        raise FieldError(f"{field} must be true or false")
    return v


def read_int(v: Any, field: str, *, default: int) -> int:
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise FieldError(f"{field} must be a whole number, got {v!r}")
    if isinstance(v, float) and not v.is_integer():
        raise FieldError(f"{field} must be a whole number, got {v!r}")
    return int(v)


def read_opt_float(v: Any, field: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise FieldError(f"{field} must be a number, got {v!r}")
    return float(v)


def read_percent(v: Any, field: str) -> int:
    """A ready threshold: unset is 100; 0 is honoured (Flagger: do not wait for available replicas)."""
    p = read_int(v, field, default=100)
    if not 0 <= p <= 100:
        raise FieldError(f"{field} {p} must be a percentage between 0 and 100")
    return p


def read_duration(v: Any, field: str) -> float:
    try:
        return parse_go_duration(str(v))
    except DurationError:
        raise FieldError(
            f"{field} {v} is not a duration; write it as a number and a unit, e.g. 30s, 1m or 1m30s"
        ) from None


def read_bounded_duration(v: Any, field: str, bounds: Bounds) -> float:
    """Seconds of a duration field the way the CRD checks it: whole numbers of ms, s, m or h
    (``1m30s``), within ``bounds``; the message names the field and the bounds."""
    text = v if isinstance(v, str) else repr(v)
    shown = text if len(text) <= SPEC_MAX_LENGTH else text[:SPEC_MAX_LENGTH] + "…"
    try:
        spec_duration_ms(text)
    except DurationError:
        raise FieldError(
            f"{field} {shown} is not a duration; write whole numbers with a unit (ms, s, m, h), "
            f"e.g. 30s, 1m or 1m30s, {bounds.text()}"
        ) from None
    try:
        return parse_spec_duration(text, bounds)
    except DurationError:
        raise FieldError(f"{field} {shown} is out of bounds: it must be {bounds.text()}") from None


def parse_time(v: Any) -> float | None:
    """Epoch seconds of an RFC3339 string the API server wrote (a timestamp field of an object's metadata
    or status); None when absent or not a time, naive times read as UTC."""
    if not isinstance(v, str) or not v:
        return None
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
