"""What a metric provider other than Prometheus is: one async ``query`` turning a rendered template
query into a number, and the two errors a check tells apart (no data vs. a failed query).

Every message names the provider and the host it asked (``Datadog api.datadoghq.com …``), because
users read these texts in status and Events to find the culprit; secrets never appear in them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from canaryd.analysis.bounded import METRICS_ANSWER_LIMIT
from canaryd.model.providers import MetricTemplate


class ProviderError(Exception):
    """A query that did not give a number: transport, HTTP status, rate limit, unreadable answer."""


class ProviderNoValues(ProviderError):
    """The provider answered, but with no value: Flagger's ``ErrNoValuesFound`` (the step halts)."""


@dataclass(frozen=True)
class ProviderSettings:
    """What a query needs besides the template: the metric's window and canaryd's limits."""

    interval_seconds: float = 60.0  # the metric's ``interval`` (Flagger's metricInterval)
    timeout: float = 5.0  # seconds for the whole query (every request of it)
    max_answer_bytes: int = METRICS_ANSWER_LIMIT
    # canaryd's own environment, for the AWS credentials chain (never a Canary's or template's values)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    now: Callable[[], float] = time.time  # wall clock, seconds (the query window's end)


class Provider(Protocol):
    """One provider type. ``secrets`` is the decoded ``data`` of the template's ``secretRef`` (empty
    without one). Raises :class:`ProviderNoValues` or :class:`ProviderError`, never anything else."""

    async def query(self, session: aiohttp.ClientSession, template: MetricTemplate, rendered_query: str,
                    secrets: Mapping[str, str], settings: ProviderSettings) -> float: ...
