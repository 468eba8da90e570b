"""The console's watch resumes by itself: after the server ends a stream (from the last resourceVersion)
and after that version is compacted away (a fresh list, every object as ADDED); an injected 503 on the
watch is retried too."""

from __future__ import annotations

import asyncio
from typing import Any

from canaryd.console.kube import follow
from canaryd.kube.resources import CANARY
from tests.console.fixtures import NS, Cluster, cluster

__all__ = ["cluster"]


async def test_follow_resumes_after_a_dropped_stream_a_compaction_and_a_503(cluster: Cluster) -> None:
    _, rv = await cluster.client.list(CANARY, NS)
    seen: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    async def collect() -> None:
        async for kind, obj in follow(cluster.client, CANARY, NS, rv, timeout_seconds=30):
            seen.put_nowait((kind, obj))

    async def weight_seen(weight: int) -> str:
        async with asyncio.timeout(10):
            while True:
                kind, obj = await seen.get()
                if (obj.get("status") or {}).get("canaryWeight") == weight:
                    return kind

    task = asyncio.create_task(collect())
    try:
        await cluster.status(canaryWeight=10)
        assert await weight_seen(10) == "MODIFIED"
        cluster.api.drop_watches()
        await cluster.status(canaryWeight=20)
        assert await weight_seen(20) == "MODIFIED"
        await cluster.status(canaryWeight=30)
        await weight_seen(30)
        cluster.api.compact()
        cluster.api.fail("GET", "/canaries", 503, "ServiceUnavailable", count=1)
        cluster.api.drop_watches()
        await cluster.status(canaryWeight=40)
        assert await weight_seen(40) in ("ADDED", "MODIFIED")
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
