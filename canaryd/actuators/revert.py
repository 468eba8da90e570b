"""Writers of ``revertOnDeletion``: the Canary's finalizer list, and the apex Service and VirtualService
given back on deletion (the bodies come from the pure :mod:`canaryd.actuators.restore`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from canaryd.actuators import restore
from canaryd.actuators.workloads import ActuatorError
from canaryd.actuators.writes import JSON, Log, patch, remember
from canaryd.cache.store import Store
from canaryd.kube import conflicts
from canaryd.kube.client import KubeClient
from canaryd.kube.errors import ApiError, Conflict, NotFound
from canaryd.kube.resources import CANARY, SERVICE, VIRTUAL_SERVICE, Resource
from canaryd.model.spec import CanarySpec


async def revert_routing(client: KubeClient, store: Store, spec: CanarySpec, selector_label: str | None,
                         selector_value: str | None, log: Log) -> int:
    """The apex Service first (so a restored VirtualService that routes to it finds the target's pods),
    then the VirtualService. Returns the number of writes; refused writes raise ``ActuatorError``."""
    ns, name = spec.namespace, spec.service.name
    writes = 0
    svc = store.get(SERVICE.kind, ns, name)
    if svc is not None:
        ops = restore.service_ops(spec, svc, selector_label, selector_value)
        if ops:
            await _patch(client, store, SERVICE, spec, name, ops)
            log.info(f"Service {name}.{ns} reverted", extra={"canary": spec.key})
            writes += 1
    vs = store.get(VIRTUAL_SERVICE.kind, ns, name)
    if vs is not None:
        vs_ops = restore.virtual_service_ops(spec, vs)
        if vs_ops is None:
            log.warning(f"VirtualService {name}.{ns} original configuration not found, unable to revert",
                        extra={"canary": spec.key})
        elif vs_ops:
            await _patch(client, store, VIRTUAL_SERVICE, spec, name, vs_ops)
            log.info(f"VirtualService {name}.{ns} reverted", extra={"canary": spec.key})
            writes += 1
    return writes


async def _patch(client: KubeClient, store: Store, res: Resource, spec: CanarySpec, name: str,
                 ops: list[JSON]) -> None:
    try:
        await patch(client, store, res, spec.namespace, name, ops, patch_type="json")
    except NotFound:
        return  # gone already: nothing to give back
    except ApiError as err:
        raise ActuatorError(f"{res.kind} {name}.{spec.namespace} revert error: {err}") from err


Change = Callable[[tuple[str, ...]], tuple[str, ...] | None]


async def set_finalizers(client: KubeClient, store: Store, canary: dict[str, Any],
                         change: Change) -> dict[str, Any] | None:
    """Write ``change(finalizers) -> new list | None`` to the Canary's finalizers, guarded by its
    resourceVersion (a 409 re-reads and asks ``change`` again). Returns the written object, or None when
    nothing was written (no change, or the Canary is gone). An added finalizer is put into the cache at
    once; a removal is not (the object may be gone by then, and the watch says so)."""
    meta = canary["metadata"]
    ns, name = meta["namespace"], meta["name"]
    current = canary
    for attempt in range(conflicts.ATTEMPTS):
        cmeta = current["metadata"]
        wanted = change(tuple(cmeta.get("finalizers") or ()))
        if wanted is None:
            return None
        body = {"metadata": {"finalizers": list(wanted), "resourceVersion": cmeta.get("resourceVersion")}}
        try:
            out = await client.patch(CANARY, ns, name, body)
        except Conflict:
            await conflicts.pause(attempt)  # the one 409 policy (kube/conflicts.py)
            try:
                current = await client.get(CANARY, ns, name)
            except NotFound:
                return None
            continue
        except NotFound:
            return None
        except ApiError as err:
            raise ActuatorError(f"updating the finalizers of canary {name}.{ns} failed: {err}") from err
        if len(wanted) >= len(cmeta.get("finalizers") or ()):
            remember(store, CANARY, out)
        return out
    raise ActuatorError(f"updating the finalizers of canary {name}.{ns} failed: conflicts on every try")
