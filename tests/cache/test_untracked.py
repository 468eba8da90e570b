"""Cached JSON trees leave the cyclic garbage collector's walks (cache/untracked.py) and are still freed
by reference counting when the watch replaces them."""

from __future__ import annotations

import gc
import weakref
from typing import Any

from canaryd.cache.store import Store
from canaryd.cache.untracked import Untracker


class Marker:
    """A tracked leaf that can be weakly referenced: its death shows the tree holding it was freed."""


def deployment(name: str, rv: str, leaf: object = None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv, "labels": {"app": name}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [
            {"name": "app", "image": "podinfo:6.0.0", "ports": [{"containerPort": 9898}],
             "env": [{"name": "A", "value": "1"}], "leaf": leaf}]}}},
        "status": {"conditions": [{"type": "Available", "status": "True"}]},
    }


def containers(tree: Any) -> list[Any]:
    out, stack = [], [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            out.append(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            out.append(node)
            stack.extend(node)
    return out


def test_every_dict_and_list_of_a_cached_object_is_untracked() -> None:
    obj = deployment("web", "1")
    assert sum(gc.is_tracked(c) for c in containers(obj)) >= 8  # what a full collection walked before
    store = Store()
    store.upsert("Deployment", obj)
    assert [c for c in containers(store.get("Deployment", "ns", "web")) if gc.is_tracked(c)] == []


def test_a_relist_untracks_too_and_replaced_objects_are_still_freed() -> None:
    marker = Marker()
    dead = weakref.ref(marker)
    store = Store()
    store.replace("Deployment", [deployment("web", "1", leaf=marker), deployment("api", "1")])
    assert not gc.is_tracked(store.get("Deployment", "ns", "api"))
    del marker
    gc.disable()  # reference counting alone must free the replaced tree: no collection runs here
    try:
        store.upsert("Deployment", deployment("web", "2"))
        assert dead() is None
    finally:
        gc.enable()


def test_a_cached_dict_given_a_container_is_tracked_again_by_cpython() -> None:
    """The safety net the module relies on: were a cached object changed against the store's contract,
    the interpreter itself tracks the dict again."""
    store = Store()
    store.upsert("Deployment", deployment("web", "1"))
    labels = store.get("Deployment", "ns", "web")["metadata"]  # type: ignore[index]
    assert not gc.is_tracked(labels)
    labels["extra"] = {"nested": []}
    assert gc.is_tracked(labels)


def test_a_very_deep_tree_does_not_overflow_the_stack() -> None:
    tree: Any = []
    for _ in range(100_000):
        tree = [{"k": tree}]
    Untracker()(tree)
    assert not gc.is_tracked(tree) and not gc.is_tracked(tree[0])


def test_a_part_shared_many_times_is_walked_once() -> None:
    """Not what JSON gives, but bad input must not stall: 60 levels each holding the one below twice are
    2**60 paths, and 120 nodes."""
    tree: Any = {"leaf": []}
    for _ in range(60):
        tree = [tree, {"k": tree}]
    Untracker()(tree)
    assert not gc.is_tracked(tree) and not gc.is_tracked(tree[1]["k"][0])


def test_disabled_leaves_objects_tracked() -> None:
    obj = deployment("web", "1")
    untrack = Untracker(enabled=False)
    assert not untrack.active
    untrack(obj)
    assert gc.is_tracked(obj) and gc.is_tracked(obj["spec"]["template"]["spec"]["containers"])
    store = Store(untrack=untrack)
    store.upsert("Deployment", obj)
    assert gc.is_tracked(store.get("Deployment", "ns", "web"))
