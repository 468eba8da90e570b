"""Flagger's webhook payload as the load tester reads it; pure, every refusal a 400 with a reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

SUPPORTED_TYPES = ("cmd", "bash")
UNSUPPORTED_TYPES = frozenset({"helm", "helmv3", "kubectl", "concord", "ngrinder"})
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_LINE_SPACE = frozenset("\t\n\r")  # a bash script may span lines


class PayloadError(ValueError):
    """The request cannot be served; ``status`` is the HTTP answer and ``str()`` its body."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Payload:
    """``{"name", "namespace", "phase", "checksum", "metadata"}``; ``metadata`` None when absent."""

    name: str = ""
    namespace: str = ""
    phase: str = ""
    checksum: str = ""
    metadata: dict[str, str] | None = None

    @property
    def canary(self) -> str:
        return f"{self.name}.{self.namespace}"


@dataclass(frozen=True)
class Task:
    """What ``POST /`` asks for: a ``cmd`` (asynchronous) or ``bash`` (blocking) command."""

    type: str
    cmd: str
    log_output: bool = False
    return_output: bool = False


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def parse_payload(body: bytes, *, allow_empty: bool = False) -> Payload:
    """Decode a webhook body; bad JSON or a non-object → 400. An empty body is an empty payload only
    where ``allow_empty`` (the constant gates ``/gate/approve`` and ``/gate/halt``)."""
    if not body.strip():
        if allow_empty:
            return Payload()
        raise PayloadError(400, "error decoding payload: empty body")
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise PayloadError(400, f"error decoding payload: {err}") from None
    if not isinstance(raw, dict):
        raise PayloadError(400, "error decoding payload: expected a JSON object")
    meta = raw.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise PayloadError(400, "error decoding payload: metadata must be an object of strings")
    return Payload(
        name=_text(raw.get("name")),
        namespace=_text(raw.get("namespace")),
        phase=_text(raw.get("phase")),
        checksum=_text(raw.get("checksum")),
        metadata=None if meta is None else {str(k): _text(v) for k, v in meta.items()},
    )


def parse_task(payload: Payload) -> Task:
    """The task of ``POST /``; 400 for a missing ``metadata`` or ``cmd`` and for other task types."""
    meta = payload.metadata
    if meta is None:
        raise PayloadError(400, "metadata not found in payload")
    kind = meta.get("type") or "cmd"
    if kind in UNSUPPORTED_TYPES:
        raise PayloadError(400, f"task type {kind} is not supported; supported types: "
                                f"{', '.join(SUPPORTED_TYPES)}")
    if kind not in SUPPORTED_TYPES:
        raise PayloadError(400, f"unknown task type {kind}")
    cmd = meta.get("cmd", "")
    if not cmd.strip():
        raise PayloadError(400, "cmd not found in metadata")
    for offset, char in enumerate(cmd):
        # a NUL cannot be passed to exec; other control characters have no place in a command line
        if not char.isprintable() and char not in _LINE_SPACE:
            raise PayloadError(400, f"cmd has a non-printable character U+{ord(char):04X} at offset {offset}")
    return Task(kind, cmd, meta.get("logCmdOutput", "") in _TRUE, meta.get("returnCmdOutput", "") in _TRUE)
