"""Status writes that survive concurrent writers: PUT to the status subresource with the object's
resourceVersion; on 409 re-read the object and apply the same change to the fresh copy.

GET-free in the common case: the caller passes the object it already has (from the watch cache), and
the server is asked again only after a conflict."""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Callable
from typing import Any

from canaryd.kube.client import KubeClient
from canaryd.kube.errors import Conflict
from canaryd.kube.resources import Resource

Mutate = Callable[[dict[str, Any]], dict[str, Any] | None]


async def update_status_with_retry(
    client: KubeClient,
    res: Resource,
    namespace: str,
    name: str,
    mutate: Mutate,
    *,
    current: dict[str, Any] | None = None,
    attempts: int = 5,
    base_delay: float = 0.01,
) -> dict[str, Any]:
    """Apply ``mutate`` to (a deep copy of) the object and write its status.

    ``mutate`` returns the object to write, or None when nothing needs writing (then the object is
    returned as is, no request made). It may be called more than once, each time with fresh data, so
    it must derive the new status from what it is given. Conflicts are retried ``attempts`` times with
    client-go's DefaultBackoff shape (10 ms, ×5, 10 % jitter); other errors propagate at once."""
    obj = current if current is not None else await client.get(res, namespace, name)
    delay = base_delay
    for attempt in range(attempts):
        desired = mutate(copy.deepcopy(obj))
        if desired is None:
            return obj
        desired.setdefault("metadata", {})["resourceVersion"] = obj["metadata"]["resourceVersion"]
        try:
            return await client.replace(res, namespace, name, desired, subresource="status")
        except Conflict:
            if attempt == attempts - 1:
                raise
        await asyncio.sleep(delay * (1 + 0.1 * random.random()))
        delay *= 5
        obj = await client.get(res, namespace, name)
    raise AssertionError("unreachable")  # pragma: no cover
