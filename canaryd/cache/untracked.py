"""Cached objects taken out of the cyclic garbage collector's sight.

A cached object is a JSON tree (dicts, lists, strings, numbers): it cannot hold a reference cycle, so the
cyclic collector has nothing to find in it, and reference counting frees it when the watch replaces it.
Yet CPython tracks every list and every dict that holds a container, and a full collection walks every
tracked object while the event loop stands still: at 1,000 canaries the cache was a third of the process's
~257,000 tracked objects (docs/scaling.md). Untracking the tree when it enters the cache removes it from
every collection.

Safe because cached objects are read-only (cache/store.py): were one changed to hold a container anyway,
CPython tracks a dict again by itself on that insertion, and an untracked object can only keep what it
references alive, never have it freed early. Outside CPython (or without the C API) this does nothing."""

from __future__ import annotations

import ctypes
import gc
import sys
from collections.abc import Callable
from typing import Any


def _c_untrack() -> Callable[[object], None] | None:
    """CPython's ``PyObject_GC_UnTrack`` (a no-op on an untracked object), or None where it is absent."""
    if sys.implementation.name != "cpython":
        return None
    try:
        proto = ctypes.PYFUNCTYPE(None, ctypes.py_object)
        fn: Callable[[object], None] = proto(("PyObject_GC_UnTrack", ctypes.pythonapi))
    except (AttributeError, OSError):
        return None
    return fn


class Untracker:
    """Untracks whole JSON trees (one per process: it holds the C function, looked up once)."""

    def __init__(self, *, enabled: bool = True) -> None:
        self._c = _c_untrack() if enabled else None

    @property
    def active(self) -> bool:
        return self._c is not None

    def __call__(self, tree: Any) -> None:
        """Untrack ``tree``'s dicts and lists, all the way down (iteratively: a deep object cannot
        overflow the stack). A node found untracked is not entered: CPython tracks every list, and every
        dict holding a container, so an untracked one was walked here before or has nothing to walk."""
        c = self._c
        if c is None or (type(tree) is not dict and type(tree) is not list):
            return
        stack = [tree]
        while stack:
            node = stack.pop()
            if not gc.is_tracked(node):
                continue  # done already (a part shared twice is walked once), or holds no container
            c(node)
            children = node.values() if type(node) is dict else node
            stack.extend(v for v in children if type(v) is dict or type(v) is list)
