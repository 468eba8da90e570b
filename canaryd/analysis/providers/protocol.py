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
from typing import TYPE_CHECKING, Protocol

import aiohttp

from canaryd.analysis.bounded import METRICS_ANSWER_LIMIT
from canaryd.analysis.providers.tokens import TokenCache
from canaryd.model.providers import MetricTemplate

if TYPE_CHECKING:
    from canaryd.kube.client import KubeClient


class ProviderError(Exception):
    """A query that did not give a number: transport, HTTP status, rate limit, unreadable answer."""


class ProviderNoValues(ProviderError):
    """The provider answered, but with no value: Flagger's ``ErrNoValuesFound`` (the step halts)."""


@dataclass(frozen=True)
class ProviderSettings:
    """What a query needs besides the template: the metric's window and canaryd's limits."""

    interval_seconds: float = 60.0  # the metric's ``interval`` (Flagger's metricInterval)
    timeout: float = 5.0  # seconds for the whole query (every request of it)
    budget: float = 0.0  # seconds the check may take in all, retries included (0: ``timeout``)
    max_answer_bytes: int = METRICS_ANSWER_LIMIT
    # canaryd's own environment, for the AWS credentials chain (never a Canary's or template's values)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    now: Callable[[], float] = time.time  # wall clock, seconds (the query window's end)
    # short-lived tokens kept between queries: the check factory's one cache (a fresh one keeps nothing)
    tokens: TokenCache = field(default_factory=TokenCache)
    # canaryd's one API-server client (keptn, externalmetrics): its requests go under canaryd's RBAC
    kube: KubeClient | None = None
    # namespaces a query sent under canaryd's own identity may name: the Canary's and the template's
    # (a tenant's template must not read or create objects elsewhere with canaryd's rights); empty: any
    namespaces: frozenset[str] = frozenset()


def check_namespace(provider: str, namespace: str, settings: ProviderSettings) -> None:
    """Refuse a query that would reach another tenant's namespace through canaryd's own RBAC."""
    if settings.namespaces and namespace not in settings.namespaces:
        allowed = " or ".join(sorted(settings.namespaces))
        raise ProviderError(f"{provider} query names namespace {namespace!r}; a template may only reach "
                            f"{allowed} (the Canary's and the template's namespace)")


class Provider(Protocol):
    """One provider type. ``secrets`` is the decoded ``data`` of the template's ``secretRef`` (empty
    without one). Raises :class:`ProviderNoValues` or :class:`ProviderError`, never anything else."""

    async def query(self, session: aiohttp.ClientSession, template: MetricTemplate, rendered_query: str,
                    secrets: Mapping[str, str], settings: ProviderSettings) -> float: ...
