"""JSON logs, one object a line (``level``, ``ts``, ``msg``, ``canary``, …), so ``jq .msg`` reads like
Flagger's tutorial output."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

import orjson

_RESERVED = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as a single JSON object; extra fields given with ``extra=`` are kept."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, tz=UTC)
        out: dict[str, Any] = {
            "level": record.levelname.lower(),
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def setup_logging(level: str) -> logging.Logger:
    """Configure the ``canaryd`` logger tree to write JSON lines to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("canaryd")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(level.upper())
    return logger


class MergingAdapter(logging.LoggerAdapter[logging.Logger]):
    """A ``LoggerAdapter`` that keeps a call's own ``extra=`` fields: the standard one (before Python
    3.13's ``merge_extra``) replaces them with its own, so writers' fields never reached the log line."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


def canary_logger(base: logging.Logger, canary_key: str) -> logging.LoggerAdapter[logging.Logger]:
    """A logger whose lines carry ``canary: name.namespace`` besides the fields of each call."""
    return MergingAdapter(base, {"canary": canary_key})
