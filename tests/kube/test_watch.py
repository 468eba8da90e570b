"""Watch stream parsing against a loopback aiohttp server writing chunked bodies: events split across
chunks, very long lines (whole large objects), bookmarks, ERROR events and refused watches."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from canaryd.kube.client import KubeClient
from canaryd.kube.errors import ApiError, Forbidden, Gone
from canaryd.kube.resources import CONFIGMAP

from .scripted import Scripted, status, stream


def line(kind: str, obj: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": kind, "object": obj}) + b"\n"


def cm(name: str, rv: str, size: int = 0) -> dict[str, Any]:
    return {"kind": "ConfigMap", "metadata": {"name": name, "resourceVersion": rv}, "data": {"k": "x" * size}}


def split_every(data: bytes, n: int) -> list[bytes]:
    return [data[i : i + n] for i in range(0, len(data), n)]


async def collect(client: KubeClient, **kw: Any) -> list[tuple[str, dict[str, Any]]]:
    return [e async for e in client.watch(CONFIGMAP, "ns", "10", **kw)]


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
async def test_events_survive_any_chunking(server: Scripted, client: KubeClient, chunk: int) -> None:
    events = [("ADDED", cm("a", "11")), ("MODIFIED", cm("a", "12")),
              ("BOOKMARK", {"kind": "ConfigMap", "metadata": {"resourceVersion": "13"}}),
              ("DELETED", cm("a", "14"))]
    body = b"".join(line(k, o) for k, o in events)
    server.reply(stream(split_every(body, chunk) if chunk < 4096 else [body[:5000], body[5000:]]))
    assert await collect(client) == events


async def test_query_of_a_watch(server: Scripted, client: KubeClient) -> None:
    server.reply(stream([]))
    assert await collect(client, timeout_seconds=17) == []
    [req] = server.seen
    assert req.path == "/api/v1/namespaces/ns/configmaps"
    assert req.query == {"watch": "1", "allowWatchBookmarks": "true", "timeoutSeconds": "17",
                         "resourceVersion": "10"}
    assert client.registry.get_sample_value(
        "canaryd_api_requests_total", {"verb": "watch", "resource": "configmaps", "code": "200"}) == 1


async def test_very_long_lines(server: Scripted, client: KubeClient) -> None:
    big = cm("big", "11", size=8 * 1024 * 1024)  # far above aiohttp's readline limit
    body = line("ADDED", big) + line("ADDED", cm("small", "12"))
    server.reply(stream(split_every(body, 300_000)))
    got = await collect(client)
    assert [o["metadata"]["name"] for _, o in got] == ["big", "small"]
    assert len(got[0][1]["data"]["k"]) == 8 * 1024 * 1024


async def test_blank_lines_and_missing_final_newline(server: Scripted, client: KubeClient) -> None:
    server.reply(stream([b"\n", line("ADDED", cm("a", "11")), b"\n\n", line("ADDED", cm("b", "12"))[:-1]]))
    assert [o["metadata"]["name"] for _, o in await collect(client)] == ["a", "b"]


async def test_error_event_410_raises_gone_after_earlier_events(server: Scripted, client: KubeClient) -> None:
    expired = {"kind": "Status", "status": "Failure", "reason": "Expired", "code": 410,
               "message": "too old resource version: 10 (500)"}
    server.reply(stream([line("ADDED", cm("a", "11")), line("ERROR", expired)]))
    seen = []
    with pytest.raises(Gone, match="too old resource version"):
        async for event in client.watch(CONFIGMAP, "ns", "10"):
            seen.append(event)
    assert len(seen) == 1


async def test_other_error_events_raise_api_error(server: Scripted, client: KubeClient) -> None:
    server.reply(stream([line("ERROR", {"kind": "Status", "code": 500, "reason": "InternalError",
                                        "message": "etcd watch failed"})]))
    with pytest.raises(ApiError) as info:
        await collect(client)
    assert not isinstance(info.value, Gone)
    assert (info.value.status, info.value.message) == (500, "etcd watch failed")


@pytest.mark.parametrize(("code", "error"), [(410, Gone), (403, Forbidden)])
async def test_refused_watch(server: Scripted, client: KubeClient, code: int, error: type[ApiError]) -> None:
    server.reply(status(code, "x", "refused"))
    with pytest.raises(error):
        await collect(client)
    assert len(server.seen) == 1  # the informer owns reconnecting, not the client
