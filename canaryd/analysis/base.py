"""What a check is: the small protocol every kind of metric check implements, and what it is given.

Checks are pluggable: a :class:`canaryd.analysis.checks.CheckRegistry` built at start-up maps each
metric of a Canary to one :class:`Check` through a list of factories.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from canaryd.analysis.bounded import METRICS_ANSWER_LIMIT
from canaryd.engine.types import CheckResult
from canaryd.model.spec import CanarySpec, MetricSpec


@dataclass(frozen=True)
class CheckContext:
    """Shared by the checks of one step."""

    session: aiohttp.ClientSession
    metrics_server: str  # the Canary's metricsServer, else canaryd's --metrics-server
    timeout: float  # seconds, bounds each check
    # canaryd's own --metrics-server: what a MetricTemplate without ``address`` uses (never the Canary's)
    operator_metrics_server: str = ""
    max_answer_bytes: int = METRICS_ANSWER_LIMIT  # a larger Prometheus answer fails the check
    # when the current run began (``status.runStartedAt``, epoch seconds; None = not known): the judge's
    # range never reaches before it, into the previous revision's points
    run_started_at: float | None = None


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


def check_timeout(interval_seconds: float, query_timeout: float) -> float:
    """How long a step's checks may take: the analysis interval (at least 1 s), but never more than
    ``--metrics-query-timeout``, so a Canary with ``interval: 1h`` cannot have a hung server hold it
    for an hour."""
    return min(max(1.0, interval_seconds), query_timeout)


def error_result(name: str, message: str) -> CheckResult:
    return CheckResult(name=name, verdict="error", message=message)
