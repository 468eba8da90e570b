"""A small stateful stand-in for the API server on a real loopback aiohttp server, for the runtime's
unit tests: objects by URL path, GET/POST/PUT/PATCH(merge) with resourceVersion preconditions on PUT
(409 when stale), status PUT touching ``.status`` only, and a record of every request. Bounded to what a
canary task sends in these tests; tests/kube/scripted.py serves fixed answers instead."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from canaryd.kube.resources import Resource


@dataclass
class Request:
    method: str
    path: str
    body: dict[str, Any] | None
    code: int


@dataclass
class FakeApi:
    url: str = ""
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    # called before each request is answered (e.g. to play another writer); may return a canned status
    before: Callable[[str, str], int | None] | None = None
    _rv: itertools.count[int] = field(default_factory=lambda: itertools.count(100))

    def put_object(self, res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        """Store ``obj`` as the server's copy (a new resourceVersion); returns the stored copy."""
        meta = obj["metadata"]
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(next(self._rv))
        self.objects[res.path(meta.get("namespace"), meta["name"])] = stored
        return copy.deepcopy(stored)

    def get_object(self, res: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(res.path(namespace, name))

    def writes(self, method: str = "PUT", suffix: str = "/status") -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = orjson.loads(raw) if raw else None
        code, out = self._answer(request.method, request.path, body)
        self.requests.append(Request(request.method, request.path, body, code))
        return web.Response(status=code, body=orjson.dumps(out), content_type="application/json")

    def _answer(self, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        canned = self.before(method, path) if self.before else None
        if canned:
            return canned, _status(canned, "canned")
        status_sub = path.endswith("/status")
        key = path[: -len("/status")] if status_sub else path
        current = self.objects.get(key)
        if method == "GET":
            return (200, current) if current is not None else (404, _status(404, "NotFound"))
        if method == "POST":
            name = body["metadata"]["name"]
            if f"{path}/{name}" in self.objects:
                return 409, _status(409, "AlreadyExists")
            return 201, self._store(f"{path}/{name}", body)
        if current is None:
            return 404, _status(404, "NotFound")
        if method == "PUT":
            if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return 409, _status(409, "Conflict")
            new = copy.deepcopy(current)
            if status_sub:
                new["status"] = body.get("status")
            else:
                new = {**body, "status": current.get("status")}
            return 200, self._store(key, new)
        if method == "PATCH" and isinstance(body, list):
            patched = _json_patch(copy.deepcopy(current), body)
            if patched is None:
                return 422, _status(422, "Invalid")  # a failed "test" op
            return 200, self._store(key, patched)
        if method == "PATCH":
            return 200, self._store(key, _merge(copy.deepcopy(current), body))
        return 405, _status(405, "MethodNotAllowed")

    def _store(self, key: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        obj.setdefault("metadata", {})["resourceVersion"] = str(next(self._rv))
        self.objects[key] = obj
        return obj


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict) and isinstance(target.get(k), dict):
            target[k] = _merge(target[k], v)
        else:
            target[k] = v
    return target


def _json_patch(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any] | None:
    """RFC 6902 add/replace/remove/test on object keys and list indexes (None when a test fails)."""
    for op in ops:
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        index: Any = int(last) if isinstance(node, list) and last != "-" else last
        if op["op"] == "test":
            if (node[index] if isinstance(node, list) else node.get(index)) != op.get("value"):
                return None
        elif op["op"] == "remove":
            del node[index]
        elif isinstance(node, list) and op["op"] == "add":
            node.insert(len(node) if index == "-" else index, op["value"])
        else:
            node[index] = op["value"]
    return doc


def _status(code: int, reason: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code,
            "message": reason}


async def start(api: FakeApi) -> web.AppRunner:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", api.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    api.url = f"http://{host}:{port}"
    return runner
