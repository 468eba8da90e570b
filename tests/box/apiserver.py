"""An in-process API server on loopback that speaks the API server's HTTP, bounded to what canaryd sends:
get, list, watch (from a resourceVersion, with bookmarks, 410 once compacted), create, update, merge and
JSON patch (``test`` included), the status subresource, resourceVersion preconditions (409), generation
bumps on spec changes, finalizers and ``deletionTimestamp``, and owner-reference garbage collection.
Every kind is a generic resource; Deployments are "rolled out" by a minimal controller-manager stand-in
so readiness waits pass (or never do, for a release marked never-ready).

It holds objects in memory, keeps every change in a history (what watches replay) and records each
request, so a test can look at what canaryd sent; ``fail`` scripts API errors for matching requests.
``e2e/test_box_parity.py`` replays one request script against it and the real kube-apiserver."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web

from canaryd.kube import resources as r

from .patches import PatchError, json_patch, merge_patch

JSON = dict[str, Any]
NEVER_READY = "box.canaryd.io/never-ready"  # a pod-template label or annotation: its rollout never ends

_PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>status))?$"
)


@dataclass(frozen=True)
class Kind:
    """How the fake treats one resource: its kind, whether it has a generation and a status subresource."""

    kind: str
    generation: bool = False
    status: bool = False
    builtin: bool = True  # list items of built-in kinds carry no apiVersion/kind (CRDs' do)


KINDS: dict[tuple[str, str], Kind] = {
    ("flagger.app", "canaries"): Kind("Canary", True, True, False),
    ("flagger.app", "metrictemplates"): Kind("MetricTemplate", True, False, False),
    ("flagger.app", "alertproviders"): Kind("AlertProvider", True, True, False),
    ("apps", "deployments"): Kind("Deployment", True, True),
    ("autoscaling", "horizontalpodautoscalers"): Kind("HorizontalPodAutoscaler", True, True),
    ("", "services"): Kind("Service"),
    ("", "configmaps"): Kind("ConfigMap"),
    ("", "secrets"): Kind("Secret"),
    ("", "events"): Kind("Event"),
    ("", "podtemplates"): Kind("PodTemplate"),
    ("networking.istio.io", "virtualservices"): Kind("VirtualService", True, False, False),
    ("networking.istio.io", "destinationrules"): Kind("DestinationRule", True, False, False),
    ("coordination.k8s.io", "leases"): Kind("Lease"),
    ("apiextensions.k8s.io", "customresourcedefinitions"): Kind("CustomResourceDefinition", True, True),
    ("metrics.keptn.sh", "keptnmetrics"): Kind("KeptnMetric", True, True, False),
    ("metrics.keptn.sh", "analyses"): Kind("Analysis", True, True, False),
}
CRDS = Path(__file__).resolve().parents[2] / "manifests" / "crd"
_VERSIONS = {res.group: res.version for res in vars(r).values() if isinstance(res, r.Resource)}

Key = tuple[str, str]  # (group, plural)


@dataclass
class Seen:
    """One request as the fake received it, and the status code it answered."""

    method: str
    path: str
    query: dict[str, str]
    status: int = 0
    content_type: str = ""


@dataclass
class Fault:
    """Answer ``count`` matching requests with ``status`` (then behave again)."""

    method: str
    path: re.Pattern[str]
    status: int
    reason: str
    count: int


@dataclass
class _Watch:
    key: Key
    namespace: str | None
    queue: asyncio.Queue[tuple[str, JSON] | None] = field(default_factory=asyncio.Queue)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(code: int, reason: str, message: str, details: JSON | None = None) -> web.Response:
    body: JSON = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")


def _resource_name(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


def _without_meta_and_status(obj: JSON) -> JSON:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class ApiServer:
    """The fake. ``await start()`` serves on 127.0.0.1 (``url``); ``await stop()`` ends every watch."""

    def __init__(self, *, bookmark_every: float = 0.5) -> None:
        self.url = ""
        self.bookmark_every = bookmark_every
        self.objects: dict[Key, dict[tuple[str, str], JSON]] = {key: {} for key in KINDS}
        self.rv = 1000
        self.compacted = 0  # watches from a resourceVersion below this get 410
        self.history: list[tuple[int, Key, str, JSON]] = []
        self.requests: list[Seen] = []
        self.faults: list[Fault] = []
        self.rollouts = True  # play the Deployment controller
        self._watches: list[_Watch] = []
        self._runner: web.AppRunner | None = None
        self._pending: set[asyncio.Task[None]] = set()

    # ---- lifecycle ----

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        self.drop_watches()
        for task in list(self._pending):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- what tests use ----

    def fail(self, method: str, path: str, status: int = 500, reason: str = "InternalError",
             count: int = 1) -> None:
        """The next ``count`` requests with ``method`` whose path matches regex ``path`` get ``status``."""
        self.faults.append(Fault(method.upper(), re.compile(path), status, reason, count))

    def drop_watches(self) -> None:
        """End every open watch stream (clients reconnect from their resourceVersion)."""
        for w in self._watches:
            w.queue.put_nowait(None)

    def compact(self) -> int:
        """Forget the history so far: watches from an older resourceVersion get 410 Gone."""
        self.compacted = self.rv
        self.history.clear()
        return self.compacted

    def install_crds(self) -> None:
        """canaryd's CRDs from ``manifests/crd/`` (``canaryd run`` checks the Canary CRD's schema)."""
        for path in sorted(CRDS.glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                if doc and doc.get("kind") == "CustomResourceDefinition":
                    self._create(("apiextensions.k8s.io", "customresourcedefinitions"), "", doc)

    def get(self, res: r.Resource, namespace: str, name: str) -> JSON | None:
        obj = self.objects[(res.group, res.plural)].get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def items(self, res: r.Resource, namespace: str | None = None) -> list[JSON]:
        return [copy.deepcopy(o) for (ns, _), o in sorted(self.objects[(res.group, res.plural)].items())
                if namespace is None or ns == namespace]

    def put(self, res: r.Resource, obj: JSON) -> JSON:
        """Create or replace an object as a client would (no precondition); returns what is stored."""
        key = (res.group, res.plural)
        meta = obj["metadata"]
        ns = meta.get("namespace", "")
        current = self.objects[key].get((ns, meta["name"]))
        if current is None:
            return self._create(key, ns, copy.deepcopy(obj))
        body = copy.deepcopy(obj)
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        out = self._update(key, current, body, subresource=None)
        assert isinstance(out, dict), out
        return out

    def edit(self, res: r.Resource, namespace: str, name: str, change: Callable[[JSON], None]) -> JSON:
        """Change an object in place (as ``kubectl edit`` would), spec and metadata only."""
        current = self.get(res, namespace, name)
        assert current is not None, f"{res.kind} {namespace}/{name} not found"
        change(current)
        return self.put(res, current)

    def remove(self, res: r.Resource, namespace: str, name: str) -> None:
        """Delete as ``kubectl delete`` would (finalizers honoured)."""
        self._delete((res.group, res.plural), namespace, name)

    def count(self, method: str, path_part: str, status: int | None = None) -> int:
        return sum(1 for s in self.requests if s.method == method and path_part in s.path
                   and (status is None or s.status == status))

    # ---- HTTP ----

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        seen = Seen(request.method, request.path, dict(request.query),
                    content_type=request.headers.get("Content-Type", ""))
        self.requests.append(seen)
        resp = await self._answer(request)
        seen.status = resp.status
        return resp

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        for fault in self.faults:
            if fault.count > 0 and fault.method == request.method and fault.path.search(request.path):
                fault.count -= 1
                return _status(fault.status, fault.reason, f"injected {fault.status}")
        m = _PATH.match(request.path)
        if m is None:
            return _status(404, "NotFound", "the server could not find the requested resource")
        group = m["group"] or ""
        key = (group, m["plural"])
        if key not in KINDS:
            return _status(404, "NotFound", "the server could not find the requested resource")
        version = m["version"] or "v1"
        ns, name, sub = m["ns"] or "", m["name"], m["sub"]
        method = request.method
        if name is None:
            if method == "GET" and request.query.get("watch") in ("1", "true"):
                return await self._watch(request, key, version, m["ns"])
            if method == "GET":
                listed = self._list(key, version, m["ns"], request.query.get("labelSelector"))
                return self._ok(_as_metadata_list(listed) if _metadata_only(request) else listed)
            if method == "POST":
                body = await self._body(request)
                if isinstance(body, web.Response):
                    return body
                existing = self.objects[key].get((ns, str((body.get("metadata") or {}).get("name"))))
                if existing is not None:
                    return self._exists(key, str(body["metadata"]["name"]))
                return self._ok(self._out(self._create(key, ns, body), version), 201)
            return _status(405, "MethodNotAllowed", f"{method} is not supported on a collection")
        current = self.objects[key].get((ns, name))
        if current is None:
            return self._not_found(key, name)
        if method == "GET":
            return self._ok(self._out(copy.deepcopy(current), version))
        if method == "DELETE":
            return self._ok(self._out(self._delete(key, ns, name), version))
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        if method == "PATCH":
            ctype = request.headers.get("Content-Type", "")
            try:
                if ctype.startswith("application/merge-patch+json"):
                    if not isinstance(body, dict):
                        return _status(400, "BadRequest", "a merge patch must be a JSON object")
                    precondition = (body.get("metadata") or {}).get("resourceVersion")
                    if precondition and precondition != current["metadata"]["resourceVersion"]:
                        return self._conflict(key, name)
                    base = copy.deepcopy(current)
                    if sub == "status":
                        patched = merge_patch(base, {"status": body.get("status")})
                    else:
                        patched = merge_patch(base, body)
                elif ctype.startswith("application/json-patch+json"):
                    patched = json_patch(copy.deepcopy(current), body)
                else:
                    return _status(415, "UnsupportedMediaType", f"the body of the request was in an unknown "
                                   f"format - accepted media types include: application/json-patch+json, "
                                   f"application/merge-patch+json; got {ctype}")
            except PatchError as err:
                return _status(422, "Invalid", str(err))
            patched.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
            out = self._update(key, current, patched, subresource=sub)
        elif method == "PUT":
            precondition = (body.get("metadata") or {}).get("resourceVersion")
            if precondition and precondition != current["metadata"]["resourceVersion"]:
                return self._conflict(key, name)
            body.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
            out = self._update(key, current, body, subresource=sub)
        else:
            return _status(405, "MethodNotAllowed", f"{method} is not supported")
        if isinstance(out, web.Response):
            return out
        return self._ok(self._out(out, version))

    async def _body(self, request: web.Request) -> Any:
        try:
            return orjson.loads(await request.read())
        except orjson.JSONDecodeError as err:
            return _status(400, "BadRequest", f"the body is not JSON: {err}")

    @staticmethod
    def _ok(obj: Any, code: int = 200) -> web.Response:
        return web.Response(status=code, body=orjson.dumps(obj), content_type="application/json")

    @staticmethod
    def _out(obj: JSON, version: str) -> JSON:
        """Objects are served in the version asked for (no conversion beyond apiVersion)."""
        group = str(obj.get("apiVersion", "")).rpartition("/")[0]
        obj["apiVersion"] = f"{group}/{version}" if group else version
        return obj

    @staticmethod
    def _not_found(key: Key, name: str) -> web.Response:
        return _status(404, "NotFound", f'{_resource_name(*key)} "{name}" not found',
                       {"name": name, "group": key[0], "kind": key[1]})

    @staticmethod
    def _exists(key: Key, name: str) -> web.Response:
        return _status(409, "AlreadyExists", f'{_resource_name(*key)} "{name}" already exists',
                       {"name": name, "group": key[0], "kind": key[1]})

    @staticmethod
    def _conflict(key: Key, name: str) -> web.Response:
        return _status(409, "Conflict", f'Operation cannot be fulfilled on {_resource_name(*key)} "{name}": '
                       "the object has been modified; please apply your changes to the latest version "
                       "and try again", {"name": name, "group": key[0], "kind": key[1]})

    # ---- the store ----

    def _bump(self) -> str:
        self.rv += 1
        return str(self.rv)

    def _record(self, key: Key, kind: str, obj: JSON) -> None:
        rv = int(obj["metadata"]["resourceVersion"])
        snapshot = copy.deepcopy(obj)
        self.history.append((rv, key, kind, snapshot))
        ns = obj["metadata"].get("namespace", "")
        for w in self._watches:
            if w.key == key and (w.namespace is None or w.namespace == ns):
                w.queue.put_nowait((kind, snapshot))

    def _create(self, key: Key, ns: str, obj: JSON) -> JSON:
        info = KINDS[key]
        meta = obj.setdefault("metadata", {})
        meta["namespace"] = ns
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        meta["resourceVersion"] = self._bump()
        meta.pop("deletionTimestamp", None)
        if info.generation:
            meta["generation"] = 1
        obj["kind"] = info.kind
        obj.setdefault("apiVersion", f"{key[0]}/{_VERSIONS.get(key[0], 'v1')}" if key[0] else "v1")
        if info.status:
            obj.pop("status", None)
        self.objects[key][(ns, meta["name"])] = obj
        self._record(key, "ADDED", obj)
        self._after_write(key, obj, None)
        return copy.deepcopy(obj)

    def _update(self, key: Key, current: JSON, body: JSON, *, subresource: str | None) -> JSON | web.Response:
        info = KINDS[key]
        meta = current["metadata"]
        new = copy.deepcopy(current)
        if subresource == "status":
            if "status" in body:
                new["status"] = copy.deepcopy(body["status"])
            else:
                new.pop("status", None)
        else:
            keep_status = current.get("status") if info.status else body.get("status")
            new = {k: copy.deepcopy(v) for k, v in body.items() if k != "status"}
            if keep_status is not None:
                new["status"] = copy.deepcopy(keep_status)
            bmeta = dict(body.get("metadata") or {})
            # the server owns these
            for owned in ("uid", "creationTimestamp", "namespace", "name", "deletionTimestamp",
                          "deletionGracePeriodSeconds", "generation"):
                if owned in meta:
                    bmeta[owned] = meta[owned]
                else:
                    bmeta.pop(owned, None)
            if meta.get("deletionTimestamp") and set(bmeta.get("finalizers") or ()) - set(
                    meta.get("finalizers") or ()):
                return _status(422, "Invalid", "metadata.finalizers: Forbidden: no new finalizers can be "
                               "added if the object is being deleted")
            new["metadata"] = bmeta
            new["kind"] = info.kind
            new["apiVersion"] = current.get("apiVersion", body.get("apiVersion"))
        if new == current:
            return copy.deepcopy(current)  # a no-op write leaves the resourceVersion alone
        if info.generation and _without_meta_and_status(new) != _without_meta_and_status(current):
            new["metadata"]["generation"] = int(meta.get("generation") or 1) + 1
        new["metadata"]["resourceVersion"] = self._bump()
        ns, name = meta.get("namespace", ""), meta["name"]
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            # the last finalizer removed: the object goes at once (watches see only DELETED)
            del self.objects[key][(ns, name)]
            self._record(key, "DELETED", new)
            self._collect_garbage(str(meta.get("uid")))
            return copy.deepcopy(new)
        self.objects[key][(ns, name)] = new
        self._record(key, "MODIFIED", new)
        self._after_write(key, new, current)
        return copy.deepcopy(new)

    def _delete(self, key: Key, ns: str, name: str) -> JSON:
        current = self.objects[key][(ns, name)]
        meta = current["metadata"]
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return copy.deepcopy(current)
            new = copy.deepcopy(current)
            new["metadata"]["deletionTimestamp"] = _now()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            if KINDS[key].generation:
                new["metadata"]["generation"] = int(meta.get("generation") or 1) + 1
            new["metadata"]["resourceVersion"] = self._bump()
            self.objects[key][(ns, name)] = new
            self._record(key, "MODIFIED", new)
            return copy.deepcopy(new)
        del self.objects[key][(ns, name)]
        gone = copy.deepcopy(current)
        gone["metadata"]["resourceVersion"] = self._bump()
        self._record(key, "DELETED", gone)
        self._collect_garbage(str(meta.get("uid")))
        return gone

    def _collect_garbage(self, uid: str) -> None:
        """The garbage collector: objects owned by ``uid`` go too (background propagation)."""
        for key, objs in self.objects.items():
            for (ns, name), obj in list(objs.items()):
                owners = obj["metadata"].get("ownerReferences") or ()
                if any(o.get("uid") == uid for o in owners) and (ns, name) in objs:
                    self._delete(key, ns, name)

    def _list(self, key: Key, version: str, namespace: str | None, selector: str | None) -> JSON:
        info = KINDS[key]
        wanted = dict(part.split("=", 1) for part in (selector or "").split(",") if "=" in part)
        items = []
        for (ns, _), obj in sorted(self.objects[key].items()):
            labels = obj["metadata"].get("labels") or {}
            if (namespace is None or ns == namespace) and all(labels.get(k) == v for k, v in wanted.items()):
                item = self._out(copy.deepcopy(obj), version)
                if info.builtin:
                    item.pop("apiVersion", None)
                    item.pop("kind", None)
                items.append(item)
        api_version = f"{key[0]}/{version}" if key[0] else version
        return {"kind": f"{info.kind}List", "apiVersion": api_version,
                "metadata": {"resourceVersion": str(self.rv)}, "items": items}

    # ---- watch ----

    async def _watch(self, request: web.Request, key: Key, version: str,
                     namespace: str | None) -> web.StreamResponse:
        query = request.query
        bookmarks = query.get("allowWatchBookmarks") in ("1", "true")
        timeout = float(query.get("timeoutSeconds") or 1800)
        since = query.get("resourceVersion") or ""
        watch = _Watch(key, namespace)
        backlog: list[tuple[str, JSON]]
        expired = since not in ("", "0") and int(since) < self.compacted
        if expired:
            backlog = []
        elif since in ("", "0"):
            backlog = [("ADDED", copy.deepcopy(o)) for (ns, _), o in sorted(self.objects[key].items())
                       if namespace is None or ns == namespace]
        else:
            backlog = [(kind, copy.deepcopy(o)) for rv, k, kind, o in self.history
                       if k == key and rv > int(since)
                       and (namespace is None or o["metadata"].get("namespace") == namespace)]
        if not expired:
            self._watches.append(watch)  # no await since the backlog was taken: nothing is missed
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        try:
            await resp.prepare(request)
            if expired:
                status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": f"too old resource version: {since} ({self.compacted})",
                          "reason": "Expired", "code": 410}
                await resp.write(orjson.dumps({"type": "ERROR", "object": status}) + b"\n")
                return resp
            partial = _metadata_only(request)
            for kind, obj in backlog:
                await resp.write(self._event(kind, obj, version, partial))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while (left := deadline - loop.time()) > 0:
                try:
                    item = await asyncio.wait_for(watch.queue.get(), min(left, self.bookmark_every))
                except TimeoutError:
                    if bookmarks:
                        await resp.write(self._bookmark(key, version))
                    continue
                if item is None:
                    break
                await resp.write(self._event(item[0], item[1], version, partial))
            else:
                if bookmarks:
                    await resp.write(self._bookmark(key, version))
            with contextlib.suppress(ConnectionError):
                await resp.write_eof()
        except ConnectionError:
            pass  # the client went away
        finally:
            if watch in self._watches:
                self._watches.remove(watch)
        return resp

    def _event(self, kind: str, obj: JSON, version: str, partial: bool = False) -> bytes:
        out = self._out(copy.deepcopy(obj), version)
        return orjson.dumps({"type": kind, "object": _as_metadata(out) if partial else out}) + b"\n"

    def _bookmark(self, key: Key, version: str) -> bytes:
        api_version = f"{key[0]}/{version}" if key[0] else version
        obj = {"kind": KINDS[key].kind, "apiVersion": api_version,
               "metadata": {"resourceVersion": str(self.rv)}}
        return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"

    # ---- the controller-manager stand-in ----

    def _after_write(self, key: Key, obj: JSON, before: JSON | None) -> None:
        if key != ("apps", "deployments") or not self.rollouts:
            return
        gen = obj["metadata"].get("generation")
        if before is not None and before["metadata"].get("generation") == gen:
            return
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        task = asyncio.get_running_loop().create_task(self._roll_out(ns, name))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _roll_out(self, ns: str, name: str) -> None:
        """What the Deployment controller and kubelets would report once the new pods run: every replica
        updated and (unless the pod template says never-ready) ready and available."""
        await asyncio.sleep(0)
        key = ("apps", "deployments")
        current = self.objects[key].get((ns, name))
        if current is None:
            return
        spec = current.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        template_meta = (spec.get("template") or {}).get("metadata") or {}
        ready = NEVER_READY not in (template_meta.get("labels") or {}) and \
            NEVER_READY not in (template_meta.get("annotations") or {})
        live = replicas if ready else 0
        cond = "True" if ready else "False"
        status = {
            "observedGeneration": current["metadata"].get("generation", 1),
            "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": live,
            "availableReplicas": live, "unavailableReplicas": replicas - live,
            "conditions": [
                {"type": "Available", "status": cond, "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True",
                 "reason": "NewReplicaSetAvailable" if ready else "ReplicaSetUpdated"},
            ],
        }
        if current.get("status") != status:
            self._update(key, current, {"status": status}, subresource="status")


def _metadata_only(request: web.Request) -> bool:
    """Asked for ``PartialObjectMetadata`` (list or watch): the objects' metadata alone, as canaryd asks
    for Secrets."""
    return "as=PartialObjectMetadata" in request.headers.get("Accept", "")


def _as_metadata(obj: JSON) -> JSON:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata") or {}}


def _as_metadata_list(listed: JSON) -> JSON:
    return {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
            "metadata": listed["metadata"], "items": [_as_metadata(i) for i in listed["items"]]}
