"""The one policy for a write answered 409 Conflict (another writer changed the object since it was
read): read the object again and redo the change on the fresh copy, at most :data:`ATTEMPTS` times, with
client-go's DefaultBackoff pauses between (10 ms, x5, 10 % jitter). Used by the status writes below and
the Canary's finalizer list (actuators/revert.py). A canary task's own status write does not retry a
decided status: it decides again from the fresh object (runtime/task.py, ``Stale``).

Status writes are GET-free in the common case: the caller passes the object it already has (from the
watch cache), and the server is asked again only after a conflict."""

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

ATTEMPTS = 5
BASE_DELAY = 0.01
FACTOR = 5


async def pause(attempt: int, base_delay: float = BASE_DELAY) -> None:
    """The wait after the ``attempt``-th (from 0) conflicting write."""
    await asyncio.sleep(base_delay * FACTOR ** attempt * (1 + 0.1 * random.random()))


async def update_status_with_retry(
    client: KubeClient,
    res: Resource,
    namespace: str,
    name: str,
    mutate: Mutate,
    *,
    current: dict[str, Any] | None = None,
    attempts: int = ATTEMPTS,
    base_delay: float = BASE_DELAY,
) -> dict[str, Any]:
    """Apply ``mutate`` to (a deep copy of) the object and write its status.

    ``mutate`` returns the object to write, or None when nothing needs writing (then the object is
    returned as is, no request made). It may be called more than once, each time with fresh data, so
    it must derive the new status from what it is given. Conflicts are retried ``attempts`` times with
    client-go's DefaultBackoff shape (10 ms, ×5, 10 % jitter); other errors propagate at once."""
    obj = current if current is not None else await client.get(res, namespace, name)
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
        await pause(attempt, base_delay)
        obj = await client.get(res, namespace, name)
    raise AssertionError("unreachable")  # pragma: no cover
