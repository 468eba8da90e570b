"""The box's API server answers the parity script as the real kube-apiserver does (``EXPECTED`` is what
e2e/test_box_parity.py checks against the bed), plus what only the box needs: the Deployment controller
stand-in, garbage collection and scripted faults."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from canaryd.kube import resources as r

from .apiserver import NEVER_READY, ApiServer
from .harness import eventually
from .objects import podinfo
from .patches import PatchError, json_patch, merge_patch
from .script import BOOKMARKS, Answer, Http, run_script

READY = [{"type": "Ready", "status": "True", "reason": "Box"}]
EXPECTED = [
    Answer("create", 201, "", (("generation", 1), ("has_uid", True), ("status", None))),
    Answer("create again", 409, "AlreadyExists"),
    Answer("get", 200, "", (("channel", "a"), ("generation", 1))),
    Answer("get missing", 404, "NotFound"),
    Answer("list", 200, "", (("list_rv_not_older", True), ("names", ["p"]))),
    Answer("list metadata only", 200, "", (
        ("items", [("PartialObjectMetadata", "meta.k8s.io/v1", ["apiVersion", "kind", "metadata"], "p",
                    True)]),
        ("kind", ("PartialObjectMetadataList", "meta.k8s.io/v1")))),
    Answer("merge patch metadata", 200, "", (("generation", 1), ("labels", {"a": "b"}), ("rv_moved", True))),
    Answer("merge patch spec", 200, "", (("channel", "b"), ("generation", 2))),
    Answer("json patch failing test", 422, "Invalid"),
    Answer("unchanged after failed test", 200, "", (("channel", "b"), ("generation", 2))),
    Answer("json patch", 200, "", (("channel", "c"), ("generation", 3))),
    Answer("status put", 200, "", (("channel", "c"), ("generation", 3), ("status", {"conditions": READY}))),
    Answer("status put stale", 409, "Conflict"),
    Answer("put ignores status", 200, "", (("channel", "d"), ("generation", 4),
                                           ("status", {"conditions": READY}))),
    Answer("merge patch stale precondition", 409, "Conflict"),
    Answer("status merge patch", 200, "", (("generation", 4), ("status", {"conditions": [
        {"type": "Ready", "status": "False", "reason": "Box"}]}))),
    Answer("add finalizer", 200, "", (("finalizers", ["box.canaryd.io/hold"]),)),
    Answer("delete held", 200, "", (("deleting", True), ("generation_bumped", True))),
    Answer("get while deleting", 200, "", (("deleting", True),)),
    Answer("delete again", 200, "", (("deleting", True),)),
    Answer("no new finalizer while deleting", 422, "Invalid"),
    Answer("remove finalizer", 200),
    Answer("gone", 404, "NotFound"),
    Answer("watch from create", 200, "", (
        ("bookmarks_well_formed", True), ("events", ("MODIFIED",) * 8 + ("DELETED",)),
        ("last_deleting", True))),
    Answer(BOOKMARKS, 200, "", (("bookmarked", True),)),
    Answer("watch metadata only", 200, "", (
        ("events", ("MODIFIED",) * 8 + ("DELETED",)),
        ("objects", (("PartialObjectMetadata", "meta.k8s.io/v1", ("apiVersion", "kind", "metadata")),)))),
    Answer("watch from compacted", 410),
]


@pytest.fixture
async def api() -> AsyncIterator[ApiServer]:
    server = ApiServer(bookmark_every=0.2)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_the_parity_script_gets_the_real_api_servers_answers(api: ApiServer) -> None:
    http = Http(api.url)

    async def compact() -> None:
        api.compact()

    try:
        got = await run_script(http, "box", compact, watch_seconds=1)
    finally:
        await http.close()
    for want, have in zip(EXPECTED, got, strict=True):
        assert have == want


async def test_deployments_roll_out_unless_never_ready(api: ApiServer) -> None:
    api.put(r.DEPLOYMENT, podinfo("ns"))

    def status() -> dict[str, object]:
        return (api.get(r.DEPLOYMENT, "ns", "podinfo") or {}).get("status") or {}

    await eventually(lambda: status().get("readyReplicas") == 1, 2, "rolled out")
    assert status()["observedGeneration"] == 1
    api.put(r.DEPLOYMENT, podinfo("ns", "6.0.1", labels={NEVER_READY: "true"}))
    await eventually(lambda: status().get("observedGeneration") == 2, 2, "observed")
    assert status()["updatedReplicas"] == 1 and status()["readyReplicas"] == 0


async def test_owned_objects_go_with_their_owner(api: ApiServer) -> None:
    owner = api.put(r.CONFIGMAP, {"metadata": {"name": "owner", "namespace": "ns"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    api.put(r.SECRET, {"metadata": {"name": "owned", "namespace": "ns", "ownerReferences": [ref]}})
    api.remove(r.CONFIGMAP, "ns", "owner")
    assert api.get(r.SECRET, "ns", "owned") is None


async def test_scripted_faults_answer_then_stop(api: ApiServer) -> None:
    api.put(r.CONFIGMAP, {"metadata": {"name": "c", "namespace": "ns"}})
    api.fail("GET", r"/configmaps/c$", 503, "ServiceUnavailable", count=1)
    http = Http(api.url)
    try:
        assert (await http.call("GET", "/api/v1/namespaces/ns/configmaps/c"))[0] == 503
        assert (await http.call("GET", "/api/v1/namespaces/ns/configmaps/c"))[0] == 200
    finally:
        await http.close()
    assert api.count("GET", "/configmaps/c", 503) == 1


@pytest.mark.parametrize("doc,ops,want", [
    ({"a": [1, 2]}, [{"op": "add", "path": "/a/-", "value": 3}], {"a": [1, 2, 3]}),
    ({"a": [1, 2]}, [{"op": "add", "path": "/a/0", "value": 0}], {"a": [0, 1, 2]}),
    ({"a": {"b~c/d": 1}}, [{"op": "remove", "path": "/a/b~0c~1d"}], {"a": {}}),
    ({"a": 1}, [{"op": "replace", "path": "/a", "value": 2}], {"a": 2}),
    ({"a": 1}, [{"op": "move", "from": "/a", "path": "/b"}], {"b": 1}),
    ({"a": 1}, [{"op": "copy", "from": "/a", "path": "/b"}], {"a": 1, "b": 1}),
    ({"a": 1}, [{"op": "test", "path": "/a", "value": 1}], {"a": 1}),
])
def test_json_patch(doc: object, ops: object, want: object) -> None:
    assert json_patch(doc, ops) == want


@pytest.mark.parametrize("doc,ops", [
    ({"a": 1}, [{"op": "test", "path": "/a", "value": 2}]),
    ({"a": 1}, [{"op": "replace", "path": "/b", "value": 2}]),
    ({"a": 1}, [{"op": "remove", "path": "/b"}]),
    ({"a": [1]}, [{"op": "add", "path": "/a/5", "value": 2}]),
    ({"a": 1}, [{"op": "frobnicate", "path": "/a"}]),
    ({"a": 1}, {"op": "add"}),
])
def test_json_patch_refuses(doc: object, ops: object) -> None:
    with pytest.raises(PatchError):
        json_patch(doc, ops)


def test_merge_patch() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": None, "e": 4}, "d": [1]}) == \
        {"a": {"c": 2, "e": 4}, "d": [1]}
