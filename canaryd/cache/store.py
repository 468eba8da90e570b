"""The in-memory watch cache: kind → {(namespace, name): slim object}, and change notification.

Subscribers are plain sync callbacks called after each change with (kind, namespace, name); they must
be cheap (the runtime only wakes tasks from them). Objects handed out are the cached dicts themselves:
callers treat them as read-only and copy before changing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from canaryd.cache.untracked import Untracker

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
Callback = Callable[[str, str, str], None]


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class Store:
    """Objects by kind, namespace and name, with subscribers told about every change (including
    relist drops). Kept per namespace so the per-event lookups of one namespace stay cheap."""

    def __init__(self, *, untrack: Callable[[Any], None] | None = None) -> None:
        self._kinds: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        self._subscribers: list[Callback] = []
        # each object entering the cache leaves the cyclic garbage collector's walks (cache/untracked.py)
        self._untrack = untrack if untrack is not None else Untracker()

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(kind, namespace, name)`` after each change; returns an unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def _notify(self, kind: str, namespace: str, name: str) -> None:
        for cb in tuple(self._subscribers):
            try:
                cb(kind, namespace, name)
            except Exception:  # one broken subscriber must not stop the informer
                log.exception("store subscriber failed for %s %s/%s", kind, namespace, name)

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self._kinds.get(kind, {}).get(namespace or "", {}).get(name)

    def items(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        by_ns = self._kinds.get(kind, {})
        if namespace is None:
            return [o for objs in by_ns.values() for o in objs.values()]
        return list(by_ns.get(namespace, {}).values())

    def count(self, kind: str) -> int:
        return sum(len(objs) for objs in self._kinds.get(kind, {}).values())

    def counts(self) -> dict[str, int]:
        return {kind: self.count(kind) for kind in self._kinds}

    def upsert(self, kind: str, obj: dict[str, Any], *, announce: bool = False) -> None:
        """Insert or replace; subscribers are told unless the resourceVersion is unchanged (or
        ``announce``: the same version, now with more of it, such as a Secret's data read after its
        metadata came). A version older than the cached one is ignored: a writer may have put the
        server's newer answer here (write-through) before the watch delivers the events leading up to
        it."""
        ns, name = key_of(obj)
        objs = self._kinds.setdefault(kind, {}).setdefault(ns, {})
        old = objs.get(name)
        if old is not None and _older(obj, old):
            return
        self._untrack(obj)
        objs[name] = obj
        if announce or old is None or _rv(old) != _rv(obj) or not _rv(obj):
            self._notify(kind, ns, name)

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        ns = namespace or ""
        by_ns = self._kinds.get(kind, {})
        objs = by_ns.get(ns, {})
        if objs.pop(name, None) is not None:
            if not objs:
                del by_ns[ns]
            self._notify(kind, ns, name)

    def replace(self, kind: str, objs: Iterable[dict[str, Any]], namespace: str | None = None) -> int:
        """Make ``kind``'s contents (within ``namespace`` when given) exactly ``objs``, as after a relist.
        Objects that disappeared are dropped; subscribers hear of every removed, added or changed key.
        Returns the number of keys reported."""
        by_ns = self._kinds.setdefault(kind, {})
        fresh: dict[str, dict[str, dict[str, Any]]] = {}
        for o in objs:
            ns, name = key_of(o)
            self._untrack(o)
            fresh.setdefault(ns, {})[name] = o
        changed: list[Key] = []
        for ns in [n for n in by_ns if namespace is None or n == namespace]:
            keep = fresh.get(ns, {})
            changed += [(ns, name) for name in by_ns[ns] if name not in keep]
        for ns, objs_ns in fresh.items():
            current = by_ns.get(ns, {})
            changed += [(ns, name) for name, o in objs_ns.items()
                        if name not in current or _rv(current[name]) != _rv(o)]
        for ns in [n for n in by_ns if namespace is None or n == namespace]:
            del by_ns[ns]
        by_ns.update(fresh)
        for ns, name in changed:
            self._notify(kind, ns, name)
        return len(changed)


def _rv(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _older(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """True when both versions are etcd revisions (decimal) and ``new``'s is lower. Same uid only: a
    re-created object is always newer, but a different uid never counts as stale."""
    a, b = _rv(new), _rv(old)
    same = (new.get("metadata") or {}).get("uid") == (old.get("metadata") or {}).get("uid")
    return same and a.isdigit() and b.isdigit() and int(a) < int(b)
