"""KubeClient on the wire, against a scripted aiohttp server on loopback: headers, bodies, error
mapping, which failures are retried (and how long it waits), request counting, list paging."""

from __future__ import annotations

import gc
import time

import aiohttp
import orjson
import pytest

from canaryd.kube.client import KubeClient, TransientError
from canaryd.kube.config import ClusterConfig
from canaryd.kube.errors import ApiError, Conflict, Forbidden, Gone, Invalid, NotFound
from canaryd.kube.resources import CANARY, CONFIGMAP, DEPLOYMENT

from .scripted import Scripted, ok, status, text


def count(client: KubeClient, verb: str, resource: str, code: str) -> float:
    value = client.registry.get_sample_value(
        "canaryd_api_requests_total", {"verb": verb, "resource": resource, "code": code}
    )
    return value or 0.0


async def test_get_sends_identity_and_counts(server: Scripted, client: KubeClient) -> None:
    server.reply(ok({"metadata": {"name": "x"}, "data": {"k": "v"}}))
    got = await client.get(CONFIGMAP, "ns", "x")
    assert got == {"metadata": {"name": "x"}, "data": {"k": "v"}}
    [req] = server.seen
    assert (req.method, req.path) == ("GET", "/api/v1/namespaces/ns/configmaps/x")
    assert req.headers["User-Agent"] == "canaryd-test/9"
    assert req.headers["Authorization"] == "Bearer t0ken"
    assert req.headers["Accept"] == "application/json"
    assert count(client, "get", "configmaps", "200") == 1


@pytest.mark.parametrize(
    ("reply", "error", "code", "message"),
    [
        (status(404, "NotFound", 'configmaps "x" not found'), NotFound, 404, 'configmaps "x" not found'),
        (status(409, "AlreadyExists", 'canaries.flagger.app "x" already exists'), Conflict, 409,
         'canaries.flagger.app "x" already exists'),
        (status(409, "Conflict", "the object has been modified"), Conflict, 409,
         "the object has been modified"),
        (status(410, "Expired", "too old resource version: 1 (42)"), Gone, 410,
         "too old resource version: 1 (42)"),
        (status(403, "Forbidden", 'User "x" cannot get resource'), Forbidden, 403,
         'User "x" cannot get resource'),
        (status(422, "Invalid", "spec.analysis.maxWeight: Invalid value: 150: must be <= 100"), Invalid, 422,
         "spec.analysis.maxWeight: Invalid value: 150: must be <= 100"),
        (status(400, "BadRequest", "bad patch"), ApiError, 400, "bad patch"),
        (text(404, "404 page not found\n"), NotFound, 404, "404 page not found"),
    ],
)
async def test_errors_are_mapped_and_never_retried(
    server: Scripted, client: KubeClient, reply: object, error: type[ApiError], code: int, message: str
) -> None:
    server.reply(reply, ok({}))  # type: ignore[arg-type]
    with pytest.raises(error) as info:
        await client.get(CANARY, "ns", "x")
    assert type(info.value) is error
    assert (info.value.status, info.value.message) == (code, message)
    assert len(server.seen) == 1
    assert count(client, "get", "canaries", str(code)) == 1


async def test_429_waits_for_retry_after(server: Scripted, client: KubeClient) -> None:
    server.reply(status(429, "TooManyRequests", "slow down", headers={"Retry-After": "1"}), ok({"ok": 1}))
    began = time.monotonic()
    assert await client.get(DEPLOYMENT, "ns", "d") == {"ok": 1}
    assert time.monotonic() - began >= 0.95
    assert count(client, "get", "deployments", "429") == 1
    assert count(client, "get", "deployments", "200") == 1


async def test_call_duration_includes_the_retry_wait(server: Scripted, client: KubeClient) -> None:
    """One call retried after Retry-After: 1 is one observation of at least that second (what the canary
    task waited), per verb and resource, and failures are observed too."""
    server.reply(status(429, "TooManyRequests", "slow down", headers={"Retry-After": "1"}), ok({"ok": 1}),
                 status(404, "NotFound", "gone"))
    await client.get(DEPLOYMENT, "ns", "d")
    with pytest.raises(NotFound):
        await client.get(DEPLOYMENT, "ns", "e")
    labels = {"verb": "get", "resource": "deployments"}
    assert client.registry.get_sample_value("canaryd_api_request_duration_seconds_count", labels) == 2
    total = client.registry.get_sample_value("canaryd_api_request_duration_seconds_sum", labels) or 0.0
    assert total >= 0.95
    under_half = client.registry.get_sample_value("canaryd_api_request_duration_seconds_bucket",
                                                  {**labels, "le": "0.5"})
    assert under_half == 1  # the 404, not the retried call


async def test_requests_leave_no_garbage_only_the_cycle_collector_frees(
        server: Scripted, client: KubeClient) -> None:
    """Objects in reference cycles outlive their request until a collection finds them; at 1,000 canaries
    full collections over them stopped the event loop for up to a second (docs/scaling.md). Successes,
    errors and a retried request: none may leave a cycle on the client's side (with a retry object per
    request, tenacity's, each left ~30)."""
    n = 40
    for _ in range(n):
        server.reply(ok({"metadata": {"name": "x"}}), status(404, "NotFound", "gone"),
                     status(503, "ServiceUnavailable", "again"), ok({}))
    await client.get(CONFIGMAP, "ns", "warm")  # first use: the session, connector and pool are made once
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(n - 1):
            with pytest.raises(NotFound):
                await client.get(CONFIGMAP, "ns", "x")
            await client.patch(CONFIGMAP, "ns", "x", {"data": {"k": "v"}})  # a 503, then retried
            await client.get(CONFIGMAP, "ns", "x")
        gc.collect()
        ours = [o for o in gc.garbage if "canaryd" in getattr(type(o), "__module__", "")
                or "tenacity" in getattr(type(o), "__module__", "")]
        assert len(gc.garbage) < n, (len(gc.garbage), ours[:10])  # not one per request: none at all
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


async def test_5xx_retried_then_given_up(server: Scripted, client: KubeClient) -> None:
    server.reply(*(status(503, "ServiceUnavailable", "etcd down") for _ in range(5)))
    with pytest.raises(TransientError) as info:
        await client.patch(DEPLOYMENT, "ns", "d", {"spec": {"replicas": 1}})
    assert info.value.status == 503 and info.value.message == "etcd down"
    assert len(server.seen) == 3  # max_attempts
    assert count(client, "patch", "deployments", "503") == 3


async def test_5xx_then_success(server: Scripted, client: KubeClient) -> None:
    server.reply(status(500, "InternalError", "oops"), status(504, "Timeout", ""), ok({"done": True}))
    assert await client.create(CONFIGMAP, "ns", {"metadata": {"name": "x"}}) == {"done": True}
    assert len(server.seen) == 3


async def test_connection_errors_retried_and_counted() -> None:
    # a port that was just free: nothing listens there
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = KubeClient(ClusterConfig(base_url=f"http://127.0.0.1:{port}", ssl_context=None), max_attempts=2)
    try:
        with pytest.raises(aiohttp.ClientConnectionError):
            await c.get(CONFIGMAP, "ns", "x")
        assert count(c, "get", "configmaps", "error") == 2
    finally:
        await c.close()


@pytest.mark.parametrize(
    ("patch_type", "content_type", "query"),
    [
        ("merge", "application/merge-patch+json", {}),
        ("json", "application/json-patch+json", {}),
        ("strategic", "application/strategic-merge-patch+json", {}),
        ("apply", "application/apply-patch+yaml", {"fieldManager": "canaryd", "force": "true"}),
    ],
)
async def test_patch_types(
    server: Scripted, client: KubeClient, patch_type: str, content_type: str, query: dict[str, str]
) -> None:
    body: object = [{"op": "replace", "path": "/spec/replicas", "value": 0}] if patch_type == "json" else {
        "spec": {"replicas": 0}}
    server.reply(ok({"patched": True}))
    await client.patch(DEPLOYMENT, "ns", "d", body, patch_type=patch_type)  # type: ignore[arg-type]
    [req] = server.seen
    assert req.method == "PATCH" and req.path == "/apis/apps/v1/namespaces/ns/deployments/d"
    assert req.headers["Content-Type"] == content_type
    assert req.query == query
    assert orjson.loads(req.body) == body


async def test_unknown_patch_type_is_refused(client: KubeClient) -> None:
    with pytest.raises(ValueError, match="unknown patch type"):
        await client.patch(DEPLOYMENT, "ns", "d", {}, patch_type="yaml")


async def test_status_subresource_replace_and_delete(server: Scripted, client: KubeClient) -> None:
    server.reply(ok({"status": {"phase": "Initialized"}}), ok({"kind": "Status", "status": "Success"}))
    await client.replace(CANARY, "ns", "c", {"status": {"phase": "Initialized"}}, subresource="status")
    await client.delete(DEPLOYMENT, "ns", "d")
    put, delete = server.seen
    assert (put.method, put.path) == ("PUT", "/apis/flagger.app/v1beta1/namespaces/ns/canaries/c/status")
    assert count(client, "update", "canaries/status", "200") == 1
    assert delete.method == "DELETE"
    assert orjson.loads(delete.body)["propagationPolicy"] == "Background"


async def test_list_follows_continue_tokens(server: Scripted, client: KubeClient) -> None:
    server.reply(
        ok({"metadata": {"resourceVersion": "100", "continue": "tok1"}, "items": [{"n": 1}, {"n": 2}]}),
        ok({"metadata": {"resourceVersion": "100"}, "items": [{"n": 3}]}),
    )
    items, rv = await client.list(CONFIGMAP, "ns", label_selector="app=x")
    assert items == [{"n": 1}, {"n": 2}, {"n": 3}] and rv == "100"
    first, second = server.seen
    assert first.query == {"limit": "500", "labelSelector": "app=x"}
    assert second.query == {"limit": "500", "labelSelector": "app=x", "continue": "tok1"}
    assert count(client, "list", "configmaps", "200") == 2


async def test_cluster_wide_list_path(server: Scripted, client: KubeClient) -> None:
    server.reply(ok({"metadata": {"resourceVersion": "5"}, "items": []}))
    assert await client.list(CANARY) == ([], "5")
    assert server.seen[0].path == "/apis/flagger.app/v1beta1/canaries"


async def test_unanswered_request_times_out_naming_it(server: Scripted) -> None:
    """A server that accepts and never answers: each attempt ends at the request timeout, and the error
    says which request (aiohttp's own timeout carries no text)."""
    import asyncio

    from aiohttp import web

    async def hang(_: web.Request) -> web.StreamResponse:
        await asyncio.sleep(2)
        return web.Response()

    server.reply(hang, hang)
    c = KubeClient(ClusterConfig(base_url=server.url, ssl_context=None), max_attempts=2, request_timeout=0.3)
    try:
        with pytest.raises(TimeoutError) as got:
            await c.get(CONFIGMAP, "ns", "x")
        assert str(got.value) == ("GET /api/v1/namespaces/ns/configmaps/x: no answer from the API server "
                                  "within 0.3s")
        assert count(c, "get", "configmaps", "error") == 2
    finally:
        await c.close()


async def test_requests_beyond_the_pool_queue_rather_than_fail(server: Scripted) -> None:
    """More concurrent requests than pooled connections, each slower than the request timeout would allow
    in total: they wait for a connection (not counted against the timeout) and all succeed."""
    import asyncio

    from aiohttp import web

    from canaryd.kube.client import POOL_SIZE

    async def slow(_: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.5)
        return web.json_response({"metadata": {"name": "x"}})

    # four rounds of 0.5 s (2 s in all) against a 1.5 s timeout: 1 s of slack per request for a busy
    # machine, and the queueing alone would still overrun the timeout if it were counted
    n = POOL_SIZE * 4
    server.reply(*([slow] * n))
    c = KubeClient(ClusterConfig(base_url=server.url, ssl_context=None), max_attempts=1, request_timeout=1.5)
    try:
        got = await asyncio.gather(*(c.get(CONFIGMAP, "ns", "x") for _ in range(n)))
        assert len(got) == n and count(c, "get", "configmaps", "200") == n
        # the queue shows in the connection-wait histogram: one observation per request, and the three
        # rounds after the first waited a round (0.5 s) or more for their connection
        waits = "canaryd_api_connection_wait_seconds"
        assert c.registry.get_sample_value(f"{waits}_count", {"lane": "step"}) == n
        waited = n - (c.registry.get_sample_value(f"{waits}_bucket", {"lane": "step", "le": "0.25"}) or 0.0)
        assert waited >= n - POOL_SIZE
    finally:
        await c.close()


async def test_a_freed_connection_goes_to_a_step_write_before_an_event(server: Scripted) -> None:
    """The pool full of slow requests, an Event create queued first and a Canary status write after it: the
    first connection freed carries the status write (kube/slots.py), and the Event goes next."""
    import asyncio

    from aiohttp import web

    from canaryd.kube.client import POOL_SIZE
    from canaryd.kube.resources import EVENT

    gates = [asyncio.Event() for _ in range(POOL_SIZE)]

    def held(gate: asyncio.Event) -> object:
        async def reply(_: web.Request) -> web.StreamResponse:
            await gate.wait()
            return web.json_response({})
        return reply

    server.reply(*(held(g) for g in gates), ok({}), ok({}))  # type: ignore[arg-type]
    c = KubeClient(ClusterConfig(base_url=server.url, ssl_context=None), max_attempts=1)

    async def until(pred: object, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while not pred():  # type: ignore[operator]  # noqa: ASYNC110 (the client's queue, polled)
                await asyncio.sleep(0.01)

    try:
        fill = [asyncio.create_task(c.get(CONFIGMAP, "ns", f"x{i}")) for i in range(POOL_SIZE)]
        await until(lambda: len(server.seen) == POOL_SIZE)
        event = asyncio.create_task(c.create(EVENT, "ns", {"metadata": {"name": "e"}}))
        await until(lambda: c._slots.waiting == 1)
        step = asyncio.create_task(c.replace(CANARY, "ns", "podinfo", {"metadata": {"name": "podinfo"}},
                                             subresource="status"))
        await until(lambda: c._slots.waiting == 2)
        gates[0].set()  # one connection freed: the status write takes it, then passes it to the Event
        await until(lambda: len(server.seen) == POOL_SIZE + 2)
        assert [s.path for s in server.seen[POOL_SIZE:]] == [
            "/apis/flagger.app/v1beta1/namespaces/ns/canaries/podinfo/status", "/api/v1/namespaces/ns/events"]
        for gate in gates:
            gate.set()
        await asyncio.gather(*fill, event, step)
        waits = "canaryd_api_connection_wait_seconds_count"
        assert c.registry.get_sample_value(waits, {"lane": "event"}) == 1
        assert c.registry.get_sample_value(waits, {"lane": "step"}) == POOL_SIZE + 1
    finally:
        for gate in gates:
            gate.set()
        await c.close()
