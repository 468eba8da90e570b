"""Errors of the API server, one class per status code callers branch on.

The message is the API server's own (from its Status body): users read it in Events and logs, so it is
passed through unchanged rather than replaced by a generic text."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


class ApiError(Exception):
    """A request the API server refused or could not serve."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}" if message else f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFound(ApiError):
    """404: the object (or its namespace) does not exist."""


class Conflict(ApiError):
    """409: stale resourceVersion on update, or AlreadyExists on create."""


class Gone(ApiError):
    """410: the resourceVersion (watch or list continue token) is too old; relist."""


class Forbidden(ApiError):
    """403: RBAC refused the request."""


class Invalid(ApiError):
    """422: the object failed validation; ``message`` holds the server's explanation."""


_BY_STATUS: Mapping[int, type[ApiError]] = MappingProxyType(
    {404: NotFound, 409: Conflict, 410: Gone, 403: Forbidden, 422: Invalid}
)


def error_from_status(status: int, body: Any, fallback_reason: str = "") -> ApiError:
    """Build the ``ApiError`` subclass for an HTTP status and a (maybe missing) ``Status`` body."""
    reason = fallback_reason
    message = ""
    if isinstance(body, dict):
        code = body.get("code")
        if isinstance(code, int) and code >= 400:
            status = code
        reason = str(body.get("reason") or reason)
        message = str(body.get("message") or "")
    elif isinstance(body, str | bytes):
        message = (body.decode("utf-8", "replace") if isinstance(body, bytes) else body).strip()[:2000]
    return _BY_STATUS.get(status, ApiError)(status, reason, message)


class Fenced(Exception):
    """A write refused before it was sent: this replica may no longer act (its leader-election lease may
    belong to another replica by now). Not an ``ApiError``: callers must not treat it as a server answer."""
