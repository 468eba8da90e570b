"""Readers of one raw Canary field each, for the parsers in ``parse``, ``parse_service`` and
``parse_analysis``: each checks the JSON type, applies the default and, on a bad value, raises
:class:`Invalid` with a message that names the field, so every parser reports errors the same way.
"""

from __future__ import annotations

from typing import Any

from canaryd.model.durations import DurationError, parse_go_duration
from canaryd.model.spec import JSON


class Invalid(Exception):
    """Carries the user-facing message out of the nested readers."""


def read_obj(v: Any, field: str) -> JSON:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise Invalid(f"{field} must be an object")
    return v


def read_opt_obj(v: Any, field: str) -> JSON | None:
    return None if v is None else read_obj(v, field)


def read_list(v: Any, field: str) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise Invalid(f"{field} must be a list")
    return v


def read_obj_list(v: Any, field: str) -> list[JSON]:
    return [read_obj(x, f"{field}[{i}]") for i, x in enumerate(read_list(v, field))]


def read_str_list(v: Any, field: str) -> list[str]:
    out = []
    for i, x in enumerate(read_list(v, field)):
        if not isinstance(x, str):
            raise Invalid(f"{field}[{i}] must be a string")
        out.append(x)
    return out


def read_opt_str(v: Any) -> str | None:
    return None if v in (None, "") else str(v)


def read_bool(v: Any, field: str) -> bool:
    if v is None:
        return False
    if not isinstance(v, bool):
        raise Invalid(f"{field} must be true or false")
    return v


def read_int(v: Any, field: str, *, default: int) -> int:
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Invalid(f"{field} must be a whole number, got {v!r}")
    if isinstance(v, float) and not v.is_integer():
        raise Invalid(f"{field} must be a whole number, got {v!r}")
    return int(v)


def read_opt_float(v: Any, field: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Invalid(f"{field} must be a number, got {v!r}")
    return float(v)


def read_percent(v: Any, field: str) -> int:
    p = read_int(v, field, default=0) or 100
    if not 0 < p <= 100:
        raise Invalid(f"{field} {p} must be a percentage between 1 and 100")
    return p


def read_duration(v: Any, field: str) -> float:
    try:
        return parse_go_duration(str(v))
    except DurationError:
        raise Invalid(
            f"{field} {v} is not a duration; write it as a number and a unit, e.g. 30s, 1m or 1m30s"
        ) from None
