"""Type checks for the small objects canaryd reads outside a Canary (MetricTemplate, AlertProvider):
each reader names the field and what it found (``spec.provider: expected an object, got a string``), so
an object the CRD schema did not guard (another CRD version, a hand-made object) gives a message a
user can act on instead of an ``AttributeError`` deep in a check or a notification.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canaryd.model.spec import JSON

_SHOWN = 64  # characters of a wrong value shown in a message


class ShapeError(ValueError):
    """The object does not have the shape its kind requires; the message starts with the field."""


def kind_of(v: Any) -> str:
    """``a string``, ``a number``… as a message says what it got."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, Mapping):
        return "an object"
    return type(v).__name__


def expect_obj(v: Any, field: str) -> JSON:
    """An object; a missing one (None) is empty."""
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise ShapeError(f"{field}: expected an object, got {kind_of(v)}")
    return v if isinstance(v, dict) else dict(v)


def expect_str(v: Any, field: str) -> str:
    """A string; a missing one (None) is empty."""
    if v is None:
        return ""
    if not isinstance(v, str):
        raise ShapeError(f"{field}: expected a string, got {kind_of(v)}")
    return v


def expect_bool(v: Any, field: str) -> bool:
    if v is None:
        return False
    if not isinstance(v, bool):
        raise ShapeError(f"{field}: expected true or false, got {kind_of(v)}")
    return v


def expect_printable(text: str, field: str) -> str:
    """A header name or value, an address: no control characters (CR/LF would split a request)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ShapeError(f"{field}: contains a control character")
    return text


def shown(v: Any) -> str:
    """A short form of a user's value for a message."""
    text = v if isinstance(v, str) else repr(v)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"
