"""Starts one task per Canary in the cache, stops it when the Canary goes, and wakes the tasks whose
dependencies changed (cache subscription → dependency index → ``task.wake()``)."""

from __future__ import annotations

import asyncio
import contextlib

from canaryd.runtime.context import Context
from canaryd.runtime.task import CanaryTask

# Kinds whose objects are named after (or owned by) a canary's target; a change wakes that canary.
_DEPENDENT_KINDS = ("Deployment", "HorizontalPodAutoscaler", "Service", "VirtualService", "DestinationRule")


class Supervisor:
    """Owns the per-canary tasks. ``on_change`` is the cache subscriber: synchronous and cheap."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._tasks: dict[tuple[str, str], tuple[CanaryTask, asyncio.Task[None]]] = {}
        self._running = False

    def start(self) -> None:
        self._running = True
        for canary in self.ctx.store.items("Canary"):
            meta = canary["metadata"]
            self._ensure(meta["namespace"], meta["name"])
        self._update_gauges()

    async def stop(self) -> None:
        """Cancel every task (between steps: a task only awaits at I/O points) and wait for them."""
        self._running = False
        tasks = [t for _, t in self._tasks.values()]
        self._tasks.clear()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._update_gauges()

    def on_change(self, kind: str, namespace: str, name: str) -> None:
        if not self._running:
            return
        if kind == "Canary":
            if self.ctx.store.get("Canary", namespace, name) is None:
                self._drop(namespace, name)
            else:
                self._ensure(namespace, name).wake()
            self._update_gauges()
            return
        for canary_name in self._dependents(kind, namespace, name):
            entry = self._tasks.get((namespace, canary_name))
            if entry is not None:
                entry[0].wake()

    def _dependents(self, kind: str, namespace: str, name: str) -> list[str]:
        """Canaries in ``namespace`` that depend on the object (target, generated, tracked config)."""
        out: list[str] = []
        for (ns, canary_name), (task, _) in self._tasks.items():
            if ns != namespace:
                continue
            canary = self.ctx.store.get("Canary", ns, canary_name)
            if canary is None:
                continue
            if _depends_on(self.ctx, canary, kind, name):
                out.append(task.name)
        return out

    def _ensure(self, namespace: str, name: str) -> CanaryTask:
        entry = self._tasks.get((namespace, name))
        if entry is not None and not entry[1].done():
            return entry[0]
        task = CanaryTask(self.ctx, namespace, name)
        handle = asyncio.get_running_loop().create_task(task.run(), name=f"canary {name}.{namespace}")
        self._tasks[(namespace, name)] = (task, handle)
        return task

    def _drop(self, namespace: str, name: str) -> None:
        entry = self._tasks.pop((namespace, name), None)
        if entry is not None:
            entry[1].cancel()

    def _update_gauges(self) -> None:
        self.ctx.metrics.tasks.set(len(self._tasks))
        per_ns: dict[str, int] = {}
        for ns, _ in self._tasks:
            per_ns[ns] = per_ns.get(ns, 0) + 1
        for ns, count in per_ns.items():
            self.ctx.metrics.canary_total.labels(namespace=ns).set(count)


def _depends_on(ctx: Context, canary: dict[str, object], kind: str, name: str) -> bool:
    spec = canary.get("spec")
    if not isinstance(spec, dict):
        return False
    target = str((spec.get("targetRef") or {}).get("name", ""))
    service = str((spec.get("service") or {}).get("name") or target)
    autoscaler = str((spec.get("autoscalerRef") or {}).get("name", ""))
    if kind in _DEPENDENT_KINDS:
        return name in {
            target,
            f"{target}-primary",
            service,
            f"{service}-primary",
            f"{service}-canary",
            autoscaler,
            f"{autoscaler}-primary",
        }
    if kind in ("ConfigMap", "Secret"):
        deployment = ctx.store.get("Deployment", str((canary.get("metadata") or {}).get("namespace", "")), target)
        if deployment is None:
            return False
        prefix = "configmap/" if kind == "ConfigMap" else "secret/"
        from canaryd.engine.revision import tracked_config_refs

        pod_spec = deployment.get("spec", {}).get("template", {}).get("spec", {})
        return any(ref_key(ref) == prefix + name for ref in tracked_config_refs(pod_spec))
    return False


def ref_key(ref: object) -> str:
    """``configmap/name`` of a tracked config reference (tuple or object with ``key``)."""
    key = getattr(ref, "key", None)
    if isinstance(key, str):
        return key
    if isinstance(ref, tuple) and len(ref) >= 1:
        return str(ref[0])
    return str(ref)
