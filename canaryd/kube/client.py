"""The only HTTP client of the API server: plain dicts in and out (orjson), errors mapped from the
Status body, bounded retries of transient failures only, and a request counter per verb/resource/code.

Why raw aiohttp and not a generated client: the hot path (watch streams, status writes) stays cheap
and typed as dicts, and every request is visible in one place for counting and retrying."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram

from canaryd.kube.config import ClusterConfig, CredentialsError, load
from canaryd.kube.errors import ApiError, Fenced, error_from_status
from canaryd.kube.resources import Resource
from canaryd.kube.slots import Lane, Slots, lane_of
from canaryd.kube.traces import Asked, connection_trace
from canaryd.kube.watch_lines import iter_lines, parse_event
from canaryd.version import user_agent as default_user_agent

PATCH_TYPES: Mapping[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",  # a JSON body is valid YAML
}
FIELD_MANAGER = "canaryd"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# connections to the API server for requests; the API server's own default limit of requests in flight is
# 400 mutating + 200 read-only per instance. Watches hold a connection each for minutes and have a pool of
# their own, unbounded (their number is the informers', which the runtime bounds: runtime/scope.py), so
# per-namespace watches never take the connections requests wait for.
POOL_SIZE = 100
_WRITES = frozenset({"create", "update", "patch", "delete"})
# Asked of the API server for metadata alone (``PartialObjectMetadata``, meta.k8s.io/v1): a list or a watch
# of a kind whose bodies canaryd does not need, such as every Secret of a namespace (docs/architecture.md)
METADATA_LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA_WATCH_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
Items = list[dict[str, Any]]  # named so the method ``KubeClient.list`` does not shadow it


class TransientError(ApiError):
    """429 or 5xx: worth retrying, after ``retry_after`` seconds when the server said so."""

    def __init__(self, status: int, reason: str, message: str, retry_after: float | None) -> None:
        super().__init__(status, reason, message)
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


class KubeClient:
    """Requests to one API server. Create with ``await KubeClient.from_config(...)``; ``close()`` at the end.

    ``registry`` receives ``canaryd_api_requests_total{verb, resource, code}``; by default a private
    registry (never the process-global one), exposed as ``self.registry``."""

    def __init__(
        self,
        config: ClusterConfig,
        *,
        user_agent: str | None = None,
        registry: CollectorRegistry | None = None,
        max_attempts: int = 5,
        max_retry_wait: float = 10.0,
        request_timeout: float = 30.0,
    ) -> None:
        self.config = config
        self.user_agent = user_agent or default_user_agent()
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "canaryd_api_requests_total",
            "Requests sent to the Kubernetes API server",
            ["verb", "resource", "code"],
            registry=self.registry,
        )
        # as the caller feels it: retries and the wait for a pooled connection included (the audit log
        # has the API server's own share)
        self.durations = Histogram(
            "canaryd_api_request_duration_seconds",
            "Wall time of one API call made by canaryd, retries and connection-pool wait included",
            ["verb", "resource"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        # the share of ``durations`` spent before a request had a connection: the pool's queue (all POOL_SIZE
        # connections busy), or a new connection's TCP and TLS handshake — what tells a busy API server
        # (slow answers) from a busy client (many requests at once) when writes are late
        self.connection_waits = Histogram(
            "canaryd_api_connection_wait_seconds",
            "Seconds a request to the API server waited for a connection: the pool's queue or a handshake",
            ["lane"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        # the pool's queue, served by lane (lease, step, event: kube/slots.py) rather than by arrival
        self._slots = Slots(POOL_SIZE)
        # the metrics' children by label values: prometheus_client's labels() validates and locks on every
        # call, a few µs per request that a dict lookup saves (2 % of canaryd's CPU at 500 canaries)
        self._counted: dict[tuple[str, str, str], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}
        self._lane_waits: dict[Lane, Any] = {}
        self._max_attempts = max_attempts
        self._max_retry_wait = max_retry_wait
        # bounded per socket operation, not in total: waiting for a free pooled connection (a thousand
        # canaries share the pool) is queueing, not a fault, and must not fail the request
        self._request_timeout = request_timeout
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=min(10.0, request_timeout),
                                              sock_read=request_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._watch_session: aiohttp.ClientSession | None = None
        # leader election's fence: consulted before every write (create/update/patch/delete); False
        # refuses it with ``Fenced`` (runtime/leader.py lets only lease writes through once the lease is
        # stale). None: every write allowed.
        self.write_guard: Callable[[Resource], bool] | None = None

    @classmethod
    async def from_config(
        cls,
        kubeconfig: str | os.PathLike[str] | None,
        *,
        user_agent: str | None = None,
        context: str | None = None,
        registry: CollectorRegistry | None = None,
        master: str | None = None,
    ) -> KubeClient:
        """From kubeconfig files (``a:b`` merged), or the in-cluster ServiceAccount when ``kubeconfig`` is
        None; ``master`` replaces the server URL. Raises ``ConfigError``."""
        config = await load(kubeconfig, context=context, master=master)
        return cls(config, user_agent=user_agent, registry=registry)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self.config.ssl_context or False, limit=POOL_SIZE)
            self._session = aiohttp.ClientSession(self.config.base_url, connector=connector,
                                                  trace_configs=[connection_trace()])
        return self._session

    @property
    def watch_session(self) -> aiohttp.ClientSession:
        """The watches' own pool (no limit: one long-lived connection per informer)."""
        if self._watch_session is None or self._watch_session.closed:
            connector = aiohttp.TCPConnector(ssl=self.config.ssl_context or False, limit=0)
            self._watch_session = aiohttp.ClientSession(self.config.base_url, connector=connector)
        return self._watch_session

    async def close(self) -> None:
        for session in (self._session, self._watch_session):
            if session is not None and not session.closed:
                await session.close()

    def _count(self, verb: str, resource: str, code: str) -> None:
        key = (verb, resource, code)
        child = self._counted.get(key)
        if child is None:
            child = self._counted[key] = self.requests.labels(verb=verb, resource=resource, code=code)
        child.inc()

    def _waited(self, lane: Lane) -> Any:
        child = self._lane_waits.get(lane)
        if child is None:
            child = self._lane_waits[lane] = self.connection_waits.labels(lane=lane.name.lower())
        return child

    def _timer(self, verb: str, resource: str) -> Any:
        key = (verb, resource)
        child = self._timed.get(key)
        if child is None:
            child = self._timed[key] = self.durations.labels(verb=verb, resource=resource)
        return child

    async def _headers(self, content_type: str | None = None,
                       accept: str = "application/json") -> tuple[dict[str, str], int]:
        """Request headers, credentials asked fresh (an expiring exec token is renewed here), and the
        credentials' generation for :meth:`_renewed`."""
        try:
            auth, generation = await self.config.request_auth()
        except CredentialsError as err:
            raise ApiError(401, "Unauthorized", str(err)) from None
        headers = {"Accept": accept, "User-Agent": self.user_agent, **auth}
        if content_type:
            headers["Content-Type"] = content_type
        return headers, generation

    async def _renewed(self, generation: int) -> bool:
        """After a 401: new credentials (an exec plugin run again, a token file re-read), worth a retry."""
        try:
            return await self.config.renew_after_401(generation)
        except CredentialsError as err:
            raise ApiError(401, "Unauthorized", str(err)) from None

    def _transport(self) -> dict[str, Any]:
        """Per-request TLS name and proxy from the kubeconfig (tls-server-name, proxy-url)."""
        out: dict[str, Any] = {}
        if self.config.server_hostname:
            out["server_hostname"] = self.config.server_hostname
        if self.config.proxy:
            out["proxy"] = self.config.proxy
        return out

    def _wait(self, err: BaseException, attempt: int) -> float:
        """Before retry ``attempt`` + 1: the server's Retry-After, else 0.1 s doubled each time, jittered."""
        if isinstance(err, TransientError) and err.retry_after is not None:
            return min(err.retry_after, self._max_retry_wait)
        base = min(self._max_retry_wait, 0.1 * 2 ** (attempt - 1))
        return random.uniform(base / 2, base)

    async def _request(
        self,
        verb: str,
        method: str,
        res: Resource,
        path: str,
        *,
        subresource: str | None = None,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Any:
        label = f"{res.plural}/{subresource}" if subresource else res.plural
        data = orjson.dumps(body) if body is not None else None
        guard = self.write_guard if verb in _WRITES else None
        fence: Callable[[], None] | None = None
        if guard is not None:
            def fence() -> None:
                if not guard(res):
                    raise Fenced(f"{verb} {label} refused: this replica no longer holds the leader lease")
        started = time.monotonic()
        try:
            # a plain loop, not a retry object per request: tenacity's (state, closures, a thread-local)
            # form reference cycles, so each request left ~30 objects only the cyclic garbage collector
            # frees, and full collections over them stopped the event loop (docs/scaling.md)
            attempts = max(1, self._max_attempts)
            for attempt in range(1, attempts + 1):
                if fence is not None:  # each attempt: a retry may come after a pause
                    fence()
                try:
                    return await self._once(verb, method, label, path, params, data, content_type, fence,
                                            accept)
                except (TransientError, aiohttp.ClientConnectionError, TimeoutError) as err:
                    if attempt == attempts:
                        raise
                    wait = self._wait(err, attempt)
                await asyncio.sleep(wait)
        finally:
            self._timer(verb, label).observe(time.monotonic() - started)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(
        self,
        verb: str,
        method: str,
        label: str,
        path: str,
        params: Mapping[str, str] | None,
        data: bytes | None,
        content_type: str,
        fence: Callable[[], None] | None = None,
        accept: str = "application/json",
    ) -> Any:
        for renewed in (False, True):  # one more try after a 401 answered with renewed credentials
            headers, generation = await self._headers(content_type if data is not None else None, accept)
            raw, status, retry_after = await self._send(verb, method, label, path, params, data, headers,
                                                        fence)
            if status != 401 or renewed or not await self._renewed(generation):
                break
            self._count(verb, label, str(status))
        self._count(verb, label, str(status))
        if status >= 400:
            raise self._error(status, raw, retry_after)
        return orjson.loads(raw) if raw else None

    async def _send(
        self,
        verb: str,
        method: str,
        label: str,
        path: str,
        params: Mapping[str, str] | None,
        data: bytes | None,
        headers: dict[str, str],
        fence: Callable[[], None] | None,
    ) -> tuple[bytes, int, str | None]:
        lane = lane_of(label.partition("/")[0])
        ctx = Asked(fence, time.monotonic(), self._waited(lane))
        try:
            async with self._slots.hold(lane), self.session.request(
                method, path, params=params, data=data, headers=headers, timeout=self._timeout,
                trace_request_ctx=ctx, **self._transport(),
            ) as resp:
                return await resp.read(), resp.status, resp.headers.get("Retry-After")
        except TimeoutError as err:  # aiohttp's says nothing of the request: name it, and the wait
            self._count(verb, label, "error")
            raise TimeoutError(f"{method} {path}: no answer from the API server within "
                               f"{self._request_timeout:g}s") from err
        except aiohttp.ClientConnectionError:
            self._count(verb, label, "error")
            raise

    @staticmethod
    def _error(status: int, raw: bytes, retry_after: str | None) -> ApiError:
        try:
            body: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = raw
        err = error_from_status(status, body)
        if err.status == 429 or err.status >= 500:
            return TransientError(err.status, err.reason, err.message, _retry_after(retry_after))
        return err

    # --- verbs -------------------------------------------------------------------------------------

    async def get(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        out: dict[str, Any] = await self._request("get", "GET", res, res.path(namespace, name))
        return out

    async def get_document(self, path: str) -> dict[str, Any]:
        """A non-resource document (``/openapi/v3/...``, readable by every authenticated identity),
        counted under resource ``path``."""
        res = Resource("", "", path, "")
        out: dict[str, Any] = await self._request("get", "GET", res, path)
        return out

    async def get_path(self, res: Resource, path: str,
                       params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """A GET of ``path`` that is not one of ``res``'s object URLs (an aggregated API's values, such as
        ``external.metrics.k8s.io``), counted under ``res``."""
        out: dict[str, Any] = await self._request("get", "GET", res, path, params=params)
        return out

    async def list_pages(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        limit: int = 500,
        metadata_only: bool = False,
    ) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        """Pages of a consistent list: (items, the list's resourceVersion). Paging keeps memory bounded
        for big collections; an expired continue token raises ``Gone`` (the caller lists again).
        ``metadata_only``: the server sends each item's ``metadata`` alone (``PartialObjectMetadata``),
        never its spec or data."""
        params: dict[str, str] = {"limit": str(limit)}
        if label_selector:
            params["labelSelector"] = label_selector
        rv = ""
        while True:
            page = await self._request("list", "GET", res, res.path(namespace), params=params,
                                       accept=METADATA_LIST_ACCEPT if metadata_only else "application/json")
            meta = page.get("metadata") or {}
            rv = rv or str(meta.get("resourceVersion") or "")
            yield list(page.get("items") or []), rv
            cont = meta.get("continue")
            if not cont:
                return
            params["continue"] = str(cont)

    async def list(
        self, res: Resource, namespace: str | None = None, *, label_selector: str | None = None
    ) -> tuple[Items, str]:
        items: Items = []
        version = ""
        async for page, rv in self.list_pages(res, namespace, label_selector=label_selector):
            items.extend(page)
            version = rv
        return items, version

    async def create(self, res: Resource, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = await self._request("create", "POST", res, res.path(namespace), body=body)
        return out

    async def replace(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        body: dict[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        path = res.path(namespace, name, subresource)
        out: dict[str, Any] = await self._request(
            "update", "PUT", res, path, subresource=subresource, body=body
        )
        return out

    async def patch(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        patch: dict[str, Any] | Items,
        *,
        patch_type: str = "merge",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """``patch_type``: merge | json | strategic | apply (server-side apply as field manager
        ``canaryd``, forcing ownership of the fields it sets)."""
        try:
            ctype = PATCH_TYPES[patch_type]
        except KeyError:
            raise ValueError(f"unknown patch type {patch_type!r}; one of {', '.join(PATCH_TYPES)}") from None
        params = {"fieldManager": FIELD_MANAGER, "force": "true"} if patch_type == "apply" else None
        path = res.path(namespace, name, subresource)
        out: dict[str, Any] = await self._request(
            "patch", "PATCH", res, path, subresource=subresource, params=params, body=patch,
            content_type=ctype,
        )
        return out

    async def delete(
        self, res: Resource, namespace: str | None, name: str, *, propagation: str = "Background"
    ) -> None:
        """Delete one object (``NotFound`` when it is already gone); dependents go by ``propagation``."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        await self._request("delete", "DELETE", res, res.path(namespace, name), body=body)

    async def watch(
        self,
        res: Resource,
        namespace: str | None,
        resource_version: str | None,
        *,
        timeout_seconds: int = 300,
        label_selector: str | None = None,
        metadata_only: bool = False,
    ) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
        """Events ("ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK", object) after ``resource_version``
        until the server ends the stream. Raises ``Gone`` when the version is too old (HTTP 410 or an
        ERROR event with code 410), another ``ApiError`` for other ERROR events. Not retried here:
        the informer owns reconnecting. ``metadata_only``: each event's object is its ``metadata`` alone."""
        params = {"watch": "1", "allowWatchBookmarks": "true", "timeoutSeconds": str(timeout_seconds)}
        if resource_version:
            params["resourceVersion"] = resource_version
        if label_selector:
            params["labelSelector"] = label_selector
        # no total timeout; a read timeout beyond the server's own end of stream catches dead peers
        timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_read=timeout_seconds + 60)
        counted = False
        headers, generation = await self._headers(
            accept=METADATA_WATCH_ACCEPT if metadata_only else "application/json")
        try:
            async with self.watch_session.get(
                res.path(namespace), params=params, headers=headers, timeout=timeout, **self._transport()
            ) as resp:
                self._count("watch", res.plural, str(resp.status))
                counted = True
                if resp.status == 401:  # the informer's next attempt goes with renewed credentials
                    await self._renewed(generation)
                if resp.status != 200:
                    raise self._error(resp.status, await resp.read(), resp.headers.get("Retry-After"))
                async for line in iter_lines(resp.content):
                    yield parse_event(line)
        except (aiohttp.ClientConnectionError, TimeoutError):
            if not counted:
                self._count("watch", res.plural, "error")
            raise
