"""The in-memory watch cache: kind → {(namespace, name): slim object}, and change notification.

Subscribers are plain sync callbacks called after each change with (kind, namespace, name); they must
be cheap (the runtime only wakes tasks from them). Objects handed out are the cached dicts themselves:
callers treat them as read-only and copy before changing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
Callback = Callable[[str, str, str], None]


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class Store:
    """Objects by kind and key, with subscribers told about every change (including relist drops)."""

    def __init__(self) -> None:
        self._kinds: dict[str, dict[Key, dict[str, Any]]] = {}
        self._subscribers: list[Callback] = []

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(kind, namespace, name)`` after each change; returns an unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def _notify(self, kind: str, key: Key) -> None:
        for cb in tuple(self._subscribers):
            try:
                cb(kind, key[0], key[1])
            except Exception:  # one broken subscriber must not stop the informer
                log.exception("store subscriber failed for %s %s/%s", kind, key[0], key[1])

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self._kinds.get(kind, {}).get((namespace or "", name))

    def items(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        objs = self._kinds.get(kind, {})
        if namespace is None:
            return list(objs.values())
        return [o for (ns, _), o in objs.items() if ns == namespace]

    def count(self, kind: str) -> int:
        return len(self._kinds.get(kind, {}))

    def counts(self) -> dict[str, int]:
        return {kind: len(objs) for kind, objs in self._kinds.items()}

    def upsert(self, kind: str, obj: dict[str, Any]) -> None:
        """Insert or replace; subscribers are told unless the resourceVersion is unchanged."""
        key = key_of(obj)
        objs = self._kinds.setdefault(kind, {})
        old = objs.get(key)
        objs[key] = obj
        if old is None or _rv(old) != _rv(obj) or not _rv(obj):
            self._notify(kind, key)

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        key = (namespace or "", name)
        if self._kinds.get(kind, {}).pop(key, None) is not None:
            self._notify(kind, key)

    def replace(self, kind: str, objs: Iterable[dict[str, Any]], namespace: str | None = None) -> int:
        """Make ``kind``'s contents (within ``namespace`` when given) exactly ``objs``, as after a relist.
        Objects that disappeared are dropped; subscribers hear of every removed, added or changed key.
        Returns the number of keys reported."""
        current = self._kinds.setdefault(kind, {})
        fresh = {key_of(o): o for o in objs}
        changed: list[Key] = []
        for key in list(current):
            if (namespace is None or key[0] == namespace) and key not in fresh:
                del current[key]
                changed.append(key)
        for key, obj in fresh.items():
            old = current.get(key)
            current[key] = obj
            if old is None or _rv(old) != _rv(obj):
                changed.append(key)
        for key in changed:
            self._notify(kind, key)
        return len(changed)


def _rv(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")
