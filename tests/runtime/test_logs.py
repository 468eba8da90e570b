"""JSON log lines: a call's own ``extra=`` fields reach the line through the per-canary adapter."""

from __future__ import annotations

import io
import logging

import orjson

from canaryd.runtime.logs import JsonFormatter, canary_logger


def _logger(stream: io.StringIO, name: str) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_call_extra_reaches_the_json_line_beside_the_canary() -> None:
    stream = io.StringIO()
    log = canary_logger(_logger(stream, "canaryd.test.logs.extra"), "podinfo.test")
    log.info("Service podinfo.test updated", extra={"webhook": "load-test", "url": "http://x/"})
    line = orjson.loads(stream.getvalue().splitlines()[-1])
    assert line["msg"] == "Service podinfo.test updated"
    assert line["canary"] == "podinfo.test"
    assert line["webhook"] == "load-test"
    assert line["url"] == "http://x/"


def test_call_extra_wins_over_the_adapter_and_no_extra_still_has_the_canary() -> None:
    stream = io.StringIO()
    log = canary_logger(_logger(stream, "canaryd.test.logs.override"), "podinfo.test")
    log.warning("first", extra={"canary": "other.test"})
    log.warning("second")
    first, second = (orjson.loads(text) for text in stream.getvalue().splitlines())
    assert (first["canary"], first["level"]) == ("other.test", "warning")
    assert (second["canary"], second["msg"]) == ("podinfo.test", "second")
