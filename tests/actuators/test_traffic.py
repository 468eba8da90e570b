"""The routing seam (actuators/traffic.py): Istio is the registered router; it reads back what it writes
from the cache and its source kind is watched."""

from __future__ import annotations

from canaryd.actuators import istio_objects
from canaryd.actuators.traffic import ROUTERS, router_for
from canaryd.cache.store import Store
from canaryd.kube.resources import VIRTUAL_SERVICE, WATCHED
from canaryd.model.routes import Routes
from tests.actuators.fixtures import tutorial_spec


def test_istio_is_the_router_of_the_default_provider() -> None:
    spec = tutorial_spec()
    assert spec.provider == "istio" and set(ROUTERS) == {"istio"}
    router = router_for(spec)
    assert router is ROUTERS["istio"] and router.source == VIRTUAL_SERVICE and router.source in WATCHED


def test_current_routes_read_from_the_cache() -> None:
    spec = tutorial_spec()
    store = Store()
    router = router_for(spec)
    assert router.current_routes(store, spec) is None  # no VirtualService yet: unknown
    for routes in (Routes(canary=30), Routes(canary=0, mirror=True)):
        vs = istio_objects.virtual_service(spec, routes.primary, routes.canary, routes.mirror)
        vs["metadata"]["resourceVersion"] = "1"
        store.upsert(VIRTUAL_SERVICE.kind, vs)
        assert router.current_routes(store, spec) == (routes.primary, routes.canary, routes.mirror)
