"""The routing seam: what Flagger calls a router. The engine decides :class:`~canaryd.model.routes.Routes`
(weights, mirror, cookies) and never names a traffic provider; a :class:`Router` puts them in place on
its own objects and reads them back for the snapshot. Istio (``routing.IstioRouter``) is the one
implementation; another provider (Gateway API ``HTTPRoute``, say) is one new module implementing this
protocol plus one entry in :data:`ROUTERS` (and its name accepted as ``spec.provider`` in
canaryd/model/parse.py). docs/architecture.md describes the seam.

The Kubernetes Services (``routing.ensure_services``) are not part of it: every provider routes to the
same ``<svc>-primary`` / ``<svc>-canary`` Services.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

from canaryd.actuators.routing import IstioRouter
from canaryd.actuators.writes import Log
from canaryd.cache.store import Store
from canaryd.kube.client import KubeClient
from canaryd.kube.resources import Resource
from canaryd.model.routes import ObservedRoutes, Routes
from canaryd.model.spec import CanarySpec


class Router(Protocol):
    """One traffic provider's writer and reader of a Canary's routes."""

    @property
    def source(self) -> Resource:
        """The kind the current routes are read from (watched, so a change wakes the Canary)."""
        ...

    async def ensure_routes(self, client: KubeClient, store: Store, spec: CanarySpec, routes: Routes,
                            log: Log) -> int:
        """Create or bring up to date every routing object with ``routes``; returns the writes made."""
        ...

    async def set_routes(self, client: KubeClient, store: Store, spec: CanarySpec, routes: Routes,
                         log: Log) -> bool:
        """Move traffic to ``routes`` (cheapest write that does it); returns whether it wrote."""
        ...

    def current_routes(self, store: Store, spec: CanarySpec) -> ObservedRoutes | None:
        """The routes in place, read from the cache; None when unknown (object absent or foreign)."""
        ...

    async def revert(self, client: KubeClient, store: Store, spec: CanarySpec, selector_label: str | None,
                     selector_value: str | None, log: Log) -> int:
        """``revertOnDeletion``: give the routing objects (and the apex Service) back; returns writes."""
        ...


ROUTERS: Mapping[str, Router] = MappingProxyType({"istio": IstioRouter()})


def router_for(spec: CanarySpec) -> Router:
    """The router of the Canary's ``spec.provider`` (parsing admits only registered names)."""
    return ROUTERS[spec.provider]
