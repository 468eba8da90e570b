"""Write helpers shared by the idempotent writers: create-or-adopt, patch builders, write-through.

Writers compare the desired body with the cached object and write only on a difference. After each
successful write the API server's answer is put into the Store at once (write-through), so the next
reconcile compares against what was written even before the watch event arrives — otherwise a quick
second reconcile would see the stale cache and write the same thing again."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from canaryd.cache.slim import slim
from canaryd.cache.store import Store
from canaryd.kube.client import KubeClient
from canaryd.kube.errors import Conflict, NotFound
from canaryd.kube.resources import Resource

JSON = dict[str, Any]
Log = logging.Logger | logging.LoggerAdapter[Any]


def remember(store: Store, res: Resource, obj: JSON) -> JSON:
    """Put an object the API server returned into the cache, slimmed as the informer would."""
    if obj.get("metadata", {}).get("name"):
        store.upsert(res.kind, slim(res.kind, {**obj, "kind": res.kind}))
    return obj


async def create(client: KubeClient, store: Store, res: Resource, body: JSON, log: Log,
                 canary: str) -> tuple[JSON, bool]:
    """Create ``body``; when it already exists (the cache is behind) re-read it once instead.
    Returns (the live object, whether this call created it)."""
    meta = body["metadata"]
    try:
        out = await client.create(res, meta["namespace"], body)
    except Conflict:
        live = await client.get(res, meta["namespace"], meta["name"])
        return remember(store, res, live), False
    log.info(f"{res.kind} {meta['name']}.{meta['namespace']} created", extra={"canary": canary})
    return remember(store, res, out), True


async def patch(client: KubeClient, store: Store, res: Resource, namespace: str, name: str,
                body: JSON | list[JSON], *, patch_type: str = "merge") -> JSON:
    out = await client.patch(res, namespace, name, body, patch_type=patch_type)
    return remember(store, res, out)


def pointer(*parts: str) -> str:
    """JSON pointer of a path (RFC 6901 escaping of ``~`` and ``/`` in label keys)."""
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def map_merge_patch(live: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> JSON | None:
    """Merge-patch value turning map ``live`` into exactly ``desired`` (nulls delete), or None if equal."""
    live = live or {}
    if dict(live) == dict(desired):
        return None
    out: JSON = {k: v for k, v in desired.items() if live.get(k) != v}
    out.update({k: None for k in live if k not in desired})
    return out


def field_ops(live: Mapping[str, Any], desired: Mapping[str, Any], *path: str) -> list[JSON]:
    """JSON-patch ops setting ``desired[path]`` at ``path`` in ``live`` (remove when absent)."""
    have: Any = live
    want: Any = desired
    for p in path:
        have = have.get(p) if isinstance(have, Mapping) else None
        want = want.get(p) if isinstance(want, Mapping) else None
    if have == want:
        return []
    if want is None:
        return [{"op": "remove", "path": pointer(*path)}]
    return [{"op": "add", "path": pointer(*path), "value": want}]


def original_configuration(live: Mapping[str, Any]) -> dict[str, str]:
    """The annotation recording a taken-over object's spec (unless kubectl already keeps one)."""
    ann = live.get("metadata", {}).get("annotations") or {}
    if "kubectl.kubernetes.io/last-applied-configuration" in ann or \
            "flagger.kubernetes.io/original-configuration" in ann:
        return {}
    spec = json.dumps(live.get("spec") or {}, sort_keys=True, separators=(",", ":"))
    return {"flagger.kubernetes.io/original-configuration": spec}


async def get_or_none(client: KubeClient, res: Resource, namespace: str, name: str) -> JSON | None:
    try:
        return await client.get(res, namespace, name)
    except NotFound:
        return None
