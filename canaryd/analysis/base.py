"""What a check is: the small protocol every kind of metric check implements, and what it is given.

Checks are pluggable: a :class:`canaryd.analysis.checks.CheckRegistry` built at start-up maps each
metric of a Canary to one :class:`Check` through a list of factories.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from canaryd.engine.types import CheckResult
from canaryd.model.spec import CanarySpec, MetricSpec


@dataclass(frozen=True)
class CheckContext:
    """Shared by the checks of one step."""

    session: aiohttp.ClientSession
    metrics_server: str  # the Canary's metricsServer, else canaryd's --metrics-server
    timeout: float  # seconds, bounds each check


class Check(Protocol):
    """One metric check of one analysis step. ``run`` never raises for expected failures: they are
    results (verdict ``fail``, ``nodata`` or ``error``)."""

    @property
    def name(self) -> str: ...

    async def run(self) -> CheckResult: ...

    def timed_out(self, seconds: float) -> CheckResult:
        """The result to record when ``run`` did not finish within ``seconds``."""
        ...


CheckFactory = Callable[[CanarySpec, MetricSpec, CheckContext], Check | None]
"""Returns a Check for the metrics it handles, ``None`` for the others."""


def error_result(name: str, message: str) -> CheckResult:
    return CheckResult(name=name, verdict="error", message=message)
