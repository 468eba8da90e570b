"""One request script, replayed against the box's API server (tests/box/test_apiserver.py) and against the
bed's kube-apiserver (e2e/test_box_parity.py): the answers that matter (status codes, reasons, the fields
each request changed) must be the same, so that what the box tests is what a real API server does.

The script uses an AlertProvider (a CRD with a status subresource that no controller touches, even with
canaryd processes of other tests on the same bed) and PodTemplates (no watch cache in the bed, so a watch
from a compacted resourceVersion reaches etcd and gets 410)."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from canaryd.kube.client import METADATA_LIST_ACCEPT, METADATA_WATCH_ACCEPT

JSON = dict[str, Any]
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
HOLD = "box.canaryd.io/hold"
# the real API server's bookmarks are best effort (about 2 s before a watch ends, when it is not busy)
BOOKMARKS = "watch sent bookmarks"


@dataclass(frozen=True)
class Answer:
    """What one step got back: the HTTP status, the Status reason on failure, and chosen facts."""

    step: str
    code: int
    reason: str = ""
    facts: tuple[tuple[str, Any], ...] = ()


@dataclass
class Http:
    """Plain HTTP to an API server (the bed's needs its client certificate: ``ssl``)."""

    base: str
    ssl: ssl.SSLContext | None = None
    session: aiohttp.ClientSession = field(default_factory=aiohttp.ClientSession)

    async def call(self, method: str, path: str, body: Any = None, ctype: str = "application/json",
                   params: dict[str, str] | None = None, accept: str | None = None) -> tuple[int, JSON]:
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": ctype, "Accept": "application/json"} if data is not None else {}
        if accept:
            headers["Accept"] = accept
        async with self.session.request(method, self.base + path, data=data, headers=headers, params=params,
                                        ssl=self.ssl if self.ssl is not None else False) as resp:
            raw = await resp.read()
            return resp.status, (orjson.loads(raw) if raw else {})

    async def watch(self, path: str, since: str, seconds: int,
                    accept: str | None = None) -> tuple[int, list[JSON]]:
        """Every event of a watch from ``since`` until the server ends it after ``seconds``."""
        params = {"watch": "1", "resourceVersion": since, "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(seconds)}
        events: list[JSON] = []
        headers = {"Accept": accept} if accept else {}
        async with self.session.get(self.base + path, params=params, headers=headers,
                                    ssl=self.ssl if self.ssl is not None else False) as resp:
            if resp.status != 200:
                return resp.status, [await resp.json()]
            async for line in resp.content:
                if line.strip():
                    events.append(orjson.loads(line))
        return 200, events

    async def close(self) -> None:
        await self.session.close()


def provider(ns: str, name: str = "p") -> JSON:
    return {"apiVersion": "flagger.app/v1beta1", "kind": "AlertProvider",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"type": "slack", "channel": "a", "address": "http://127.0.0.1:9/hook"}}


def _answer(step: str, code: int, body: JSON, **facts: Any) -> Answer:
    reason = str(body.get("reason") or "") if code >= 400 else ""
    return Answer(step, code, reason, tuple(sorted(facts.items())))


def _gen(body: JSON) -> int:
    return int((body.get("metadata") or {}).get("generation") or 0)


def _rv(body: JSON) -> int:
    return int((body.get("metadata") or {}).get("resourceVersion") or 0)


async def run_script(http: Http, ns: str, compact: Callable[[], Awaitable[None]], *,
                     watch_seconds: int = 12) -> list[Answer]:
    """The script; ``compact`` makes the server forget the history so far (etcd compaction). The watch
    runs ``watch_seconds``: the real API server sends a bookmark 2 s before a watch's timeout (measured:
    none within a 5 s watch, one at 5.1 s of a 7 s watch, none at all in some 8 s watches on a busy bed)."""
    base = f"/apis/flagger.app/v1beta1/namespaces/{ns}/alertproviders"
    one = f"{base}/p"
    out: list[Answer] = []

    code, created = await http.call("POST", base, provider(ns))
    out.append(_answer("create", code, created, generation=_gen(created),
                       has_uid=bool(created["metadata"].get("uid")), status=created.get("status")))
    first_rv = str(created["metadata"]["resourceVersion"])
    code, body = await http.call("POST", base, provider(ns))
    out.append(_answer("create again", code, body))
    code, body = await http.call("GET", one)
    out.append(_answer("get", code, body, generation=_gen(body), channel=body["spec"]["channel"]))
    code, body = await http.call("GET", f"{base}/missing")
    out.append(_answer("get missing", code, body))
    code, body = await http.call("GET", base)
    out.append(_answer("list", code, body, names=[i["metadata"]["name"] for i in body["items"]],
                       list_rv_not_older=int(body["metadata"]["resourceVersion"]) >= _rv(created)))
    code, body = await http.call("GET", base, accept=METADATA_LIST_ACCEPT)  # how canaryd lists Secrets
    out.append(_answer("list metadata only", code, body, kind=(body.get("kind"), body.get("apiVersion")),
                       items=[(i.get("kind"), i.get("apiVersion"), sorted(i), i["metadata"]["name"],
                               _rv(i) == _rv(created)) for i in body["items"]]))

    code, labelled = await http.call("PATCH", one, {"metadata": {"labels": {"a": "b"}}}, MERGE)
    out.append(_answer("merge patch metadata", code, labelled, generation=_gen(labelled),
                       rv_moved=_rv(labelled) > _rv(created), labels=labelled["metadata"].get("labels")))
    code, body = await http.call("PATCH", one, {"spec": {"channel": "b"}}, MERGE)
    out.append(_answer("merge patch spec", code, body, generation=_gen(body),
                       channel=body["spec"]["channel"]))
    failing = [{"op": "test", "path": "/spec/channel", "value": "zzz"},
               {"op": "replace", "path": "/spec/channel", "value": "c"}]
    code, body = await http.call("PATCH", one, failing, JSON_PATCH)
    out.append(_answer("json patch failing test", code, body))
    code, body = await http.call("GET", one)
    out.append(_answer("unchanged after failed test", code, body, channel=body["spec"]["channel"],
                       generation=_gen(body)))
    passing = [{"op": "test", "path": "/spec/channel", "value": "b"},
               {"op": "replace", "path": "/spec/channel", "value": "c"}]
    code, body = await http.call("PATCH", one, passing, JSON_PATCH)
    out.append(_answer("json patch", code, body, generation=_gen(body), channel=body["spec"]["channel"]))

    ready = {"conditions": [{"type": "Ready", "status": "True", "reason": "Box"}]}
    fresh = {**body, "status": ready}
    code, body = await http.call("PUT", f"{one}/status", fresh)
    out.append(_answer("status put", code, body, generation=_gen(body), status=body.get("status"),
                       channel=body["spec"]["channel"]))
    stale = {**labelled, "status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    code, body = await http.call("PUT", f"{one}/status", stale)
    out.append(_answer("status put stale", code, body))
    current = (await http.call("GET", one))[1]
    replaced = {**current, "spec": {**current["spec"], "channel": "d"},
                "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}
    code, body = await http.call("PUT", one, replaced)
    out.append(_answer("put ignores status", code, body, generation=_gen(body), status=body.get("status"),
                       channel=body["spec"]["channel"]))
    precondition = {"metadata": {"resourceVersion": labelled["metadata"]["resourceVersion"]},
                    "spec": {"channel": "e"}}
    code, body = await http.call("PATCH", one, precondition, MERGE)
    out.append(_answer("merge patch stale precondition", code, body))
    code, body = await http.call("PATCH", f"{one}/status", {"status": {"conditions": [
        {"type": "Ready", "status": "False", "reason": "Box"}]}}, MERGE)
    out.append(_answer("status merge patch", code, body, generation=_gen(body), status=body.get("status")))

    code, body = await http.call("PATCH", one, {"metadata": {"finalizers": [HOLD]}}, MERGE)
    before_delete = _gen(body)
    out.append(_answer("add finalizer", code, body, finalizers=body["metadata"].get("finalizers")))
    code, body = await http.call("DELETE", one)
    out.append(_answer("delete held", code, body, deleting=bool(body["metadata"].get("deletionTimestamp")),
                       generation_bumped=_gen(body) > before_delete))
    code, body = await http.call("GET", one)
    out.append(_answer("get while deleting", code, body,
                       deleting=bool(body["metadata"].get("deletionTimestamp"))))
    code, body = await http.call("DELETE", one)
    out.append(_answer("delete again", code, body, deleting=bool(body["metadata"].get("deletionTimestamp"))))
    more = {"metadata": {"finalizers": [HOLD, "box.canaryd.io/more"]}}
    code, body = await http.call("PATCH", one, more, MERGE)
    out.append(_answer("no new finalizer while deleting", code, body))
    code, body = await http.call("PATCH", one, {"metadata": {"finalizers": None}}, MERGE)
    out.append(_answer("remove finalizer", code, body))
    code, body = await http.call("GET", one)
    out.append(_answer("gone", code, body))

    code, events = await http.watch(base, first_rv, seconds=watch_seconds)
    kinds = [e["type"] for e in events if e["type"] != "BOOKMARK"]
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    out.append(Answer("watch from create", code, "", (
        ("bookmarks_well_formed", all(set(b["object"]) == {"kind", "apiVersion", "metadata"}
                                      and set(b["object"]["metadata"]) == {"resourceVersion"}
                                      and _rv(b["object"]) >= int(first_rv) for b in bookmarks)),
        ("events", tuple(kinds)),
        ("last_deleting", bool(events and kinds and kinds[-1] == "DELETED")),
    )))
    out.append(Answer(BOOKMARKS, code, "", (("bookmarked", bool(bookmarks)),)))
    code, events = await http.watch(base, first_rv, seconds=1, accept=METADATA_WATCH_ACCEPT)
    out.append(Answer("watch metadata only", code, "", (
        ("events", tuple(e["type"] for e in events if e["type"] != "BOOKMARK")),
        ("objects", tuple(sorted({(e["object"].get("kind"), e["object"].get("apiVersion"),
                                   tuple(sorted(e["object"]))) for e in events if e["type"] != "BOOKMARK"}))),
    )))

    templates = f"/api/v1/namespaces/{ns}/podtemplates"
    template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"},
                "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}
    code, body = await http.call("POST", templates, template)
    old_rv = str(body["metadata"]["resourceVersion"])
    for i in range(2):
        await http.call("PATCH", f"{templates}/t", {"metadata": {"labels": {"step": str(i)}}}, MERGE)
    await compact()
    code, events = await http.watch(templates, old_rv, seconds=1)
    # the API server may refuse up front (HTTP 410) or start the stream with an ERROR event: both are 410
    status = events[0] if code != 200 else (events[0].get("object") if events else {}) or {}
    out.append(Answer("watch from compacted", code if code != 200 else int(status.get("code") or 0)))
    return out
