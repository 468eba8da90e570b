"""The shared defaults reach every reader: the command line, ``Settings``, the spec parser and the engine."""

from __future__ import annotations

import os

import pytest

from canaryd.cli import build_parser, settings_from_args
from canaryd.engine.types import Snapshot
from canaryd.model import defaults
from canaryd.settings import Settings

ENV = ("CANARYD_SELECTOR_LABELS", "CANARYD_METRICS_SERVER", "CANARYD_LOG_LEVEL", "CANARYD_PORT",
       "CANARYD_HOST")


def test_flagger_values() -> None:
    assert defaults.SELECTOR_LABELS == ("app", "name", "app.kubernetes.io/name")
    assert defaults.METRICS_SERVER == "http://prometheus:9090"


@pytest.mark.skipif(any(name in os.environ for name in ENV), reason="the environment sets a default")
def test_command_line_and_settings_agree() -> None:
    from_flags = settings_from_args(build_parser().parse_args(["run"]))
    plain = Settings()
    for s in (from_flags, plain):
        assert (s.selector_labels, s.metrics_server, s.log_level, s.port, s.host) == (
            defaults.SELECTOR_LABELS, defaults.METRICS_SERVER, defaults.LOG_LEVEL, defaults.HTTP_PORT,
            defaults.HTTP_HOST)
    assert Snapshot(target=None, primary=None).selector_labels == defaults.SELECTOR_LABELS
