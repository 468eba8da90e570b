"""Store semantics: upsert/delete notifications, and relist replacement that drops vanished objects."""

from __future__ import annotations

from typing import Any

from canaryd.cache.store import Store


def obj(name: str, rv: str, ns: str = "a") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": rv}}


def recorder(store: Store) -> list[tuple[str, str, str]]:
    seen: list[tuple[str, str, str]] = []
    store.subscribe(lambda k, ns, n: seen.append((k, ns, n)))
    return seen


def test_upsert_get_items_delete() -> None:
    s = Store()
    seen = recorder(s)
    s.upsert("ConfigMap", obj("x", "1"))
    s.upsert("ConfigMap", obj("x", "1"))  # same version: no news
    s.upsert("ConfigMap", obj("y", "2", ns="b"))
    assert s.get("ConfigMap", "a", "x") == obj("x", "1")
    assert [o["metadata"]["name"] for o in s.items("ConfigMap")] == ["x", "y"]
    assert [o["metadata"]["name"] for o in s.items("ConfigMap", "b")] == ["y"]
    s.delete("ConfigMap", "a", "x")
    s.delete("ConfigMap", "a", "x")  # already gone: no news
    assert s.get("ConfigMap", "a", "x") is None
    assert seen == [("ConfigMap", "a", "x"), ("ConfigMap", "b", "y"), ("ConfigMap", "a", "x")]
    assert s.counts() == {"ConfigMap": 1}


def test_replace_drops_vanished_and_reports_changes() -> None:
    s = Store()
    for o in (obj("keep", "1"), obj("change", "1"), obj("gone", "1"), obj("other-ns", "1", ns="z")):
        s.upsert("Secret", o)
    seen = recorder(s)
    reported = s.replace("Secret", [obj("keep", "1"), obj("change", "5"), obj("new", "6")], namespace="a")
    assert reported == 3
    assert sorted(seen) == [("Secret", "a", "change"), ("Secret", "a", "gone"), ("Secret", "a", "new")]
    assert s.get("Secret", "a", "gone") is None
    assert s.get("Secret", "z", "other-ns") is not None  # other namespace untouched by a scoped relist
    seen.clear()
    s.replace("Secret", [])
    assert s.count("Secret") == 0 and len(seen) == 4


def test_broken_subscriber_does_not_stop_others() -> None:
    s = Store()

    def broken(kind: str, ns: str, name: str) -> None:
        raise RuntimeError("boom")

    s.subscribe(broken)
    seen = recorder(s)
    s.upsert("Service", obj("x", "1"))
    assert seen == [("Service", "a", "x")]


def test_unsubscribe() -> None:
    s = Store()
    seen: list[str] = []
    off = s.subscribe(lambda k, ns, n: seen.append(n))
    s.upsert("Service", obj("x", "1"))
    off()
    s.upsert("Service", obj("y", "1"))
    assert seen == ["x"]


def test_stale_versions_do_not_overwrite_newer_write_through() -> None:
    s = Store()
    seen = recorder(s)
    s.upsert("Deployment", obj("d", "20"))  # the server's answer to our write, put in by the writer
    s.upsert("Deployment", obj("d", "15"))  # the watch catching up with an older event
    assert s.get("Deployment", "a", "d") == obj("d", "20")
    s.upsert("Deployment", obj("d", "21"))
    assert s.get("Deployment", "a", "d") == obj("d", "21")
    assert len(seen) == 2
    other = {"metadata": {**obj("d", "3")["metadata"], "uid": "another"}}
    s.upsert("Deployment", other)  # a different object under the same name is never "stale"
    assert s.get("Deployment", "a", "d") == other


def test_announce_tells_subscribers_of_the_same_version_with_more_of_it() -> None:
    """A Secret's data read after its metadata came: same resourceVersion, and the task waiting for it
    must wake; an older version is still ignored, announced or not."""
    s = Store()
    s.upsert("Secret", obj("x", "5"))
    seen = recorder(s)
    s.upsert("Secret", {**obj("x", "5"), "checksum": "c"})
    assert seen == []
    s.upsert("Secret", {**obj("x", "5"), "checksum": "d"}, announce=True)
    assert seen == [("Secret", "a", "x")] and s.get("Secret", "a", "x") == {**obj("x", "5"), "checksum": "d"}
    s.upsert("Secret", {**obj("x", "4"), "checksum": "e"}, announce=True)
    assert seen == [("Secret", "a", "x")] and (s.get("Secret", "a", "x") or {})["checksum"] == "d"
