"""``list``, ``get`` and ``wait``: each reads the API server with the user's credentials and, when it
follows a Canary, watches it (no polling). Exit codes of ``wait``: 0 promoted, 1 rolled back or failed,
2 timed out, 3 invalid or not found."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import orjson

from canaryd.console import render, wait_result
from canaryd.console.kube import (
    ConsoleError,
    connect,
    events_of,
    follow,
    get_canary,
    is_event_of,
    list_canaries,
    one_line,
    target_deployment,
)
from canaryd.kube.client import KubeClient
from canaryd.kube.errors import ApiError
from canaryd.kube.resources import CANARY, EVENT

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen: the view redraws in place


@dataclass
class Options:
    kubeconfig: str | None
    context: str | None
    namespace: str | None  # None with -A
    output: str = ""  # "" or "json"
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)


def _json(obj: Any) -> str:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()


async def _with_client(opts: Options, body: Callable[[KubeClient], Any]) -> int:
    try:
        client = await connect(opts.kubeconfig, opts.context)
    except ConsoleError as err:
        print(f"kubectl canary: {err}", file=opts.err)
        return wait_result.EXIT_INVALID
    try:
        code: int = await body(client)
        return code
    except ConsoleError as err:
        print(f"kubectl canary: {err}", file=opts.err)
        return wait_result.EXIT_INVALID
    except (ApiError, OSError) as err:  # cannot ask: not a verdict on the release
        print(f"kubectl canary: the API server: {one_line(err)}", file=opts.err)
        return wait_result.EXIT_INVALID
    finally:
        await client.close()


# ---- list ----


async def list_command(opts: Options) -> int:
    async def body(client: KubeClient) -> int:
        items, _ = await list_canaries(client, opts.namespace)
        rows = sorted((render.row(c) for c in items), key=lambda r: (r["namespace"], r["name"]))
        if opts.output == "json":
            print(_json({"items": rows}), file=opts.out)
        elif not rows:
            where = f"namespace {opts.namespace}" if opts.namespace else "any namespace"
            print(f"No canaries found in {where}.", file=opts.err)
        else:
            for line in render.table(rows, namespaces=opts.namespace is None):
                print(line, file=opts.out)
        return 0

    return await _with_client(opts, body)


# ---- get ----


def _snapshot(canary: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    out = render.row(canary)
    p = render.progress_of(canary)
    out.update(maxWeight=p.max_weight, nextStepAt=(canary.get("status") or {}).get("nextStepAt"),
               events=[{"type": e.get("type"), "reason": e.get("reason"), "message": e.get("message"),
                        "count": e.get("count"), "lastTimestamp": e.get("lastTimestamp")}
                       for e in sorted(events, key=render.event_order)[-20:]])
    return out


async def get_command(opts: Options, name: str, watch: bool) -> int:
    namespace = opts.namespace or "default"

    async def body(client: KubeClient) -> int:
        canary, rv = await get_canary(client, namespace, name)
        events, events_rv = await events_of(client, namespace, name)
        if not watch:
            _show(opts, canary, events, live=False)
            return 0
        return await _live(client, opts, namespace, name, canary, rv, events, events_rv)

    return await _with_client(opts, body)


def _show(opts: Options, canary: dict[str, Any], events: list[dict[str, Any]], *, live: bool,
          steps: list[tuple[render.Check, ...]] | None = None) -> None:
    if opts.output == "json":
        print(_json(_snapshot(canary, events)), file=opts.out, flush=True)
        return
    lines = render.view(canary, events, time.time(), steps=steps or ())
    print((CLEAR if live else "") + "\n".join(lines), file=opts.out, flush=True)


async def _live(client: KubeClient, opts: Options, namespace: str, name: str, canary: dict[str, Any],
                rv: str, events: list[dict[str, Any]], events_rv: str) -> int:
    """Follows the Canary and its Events by watch until interrupted (or the Canary is deleted). On a
    terminal the view is redrawn in place (and every second, for the countdown); piped, one line per
    change of progress and one per new Event, as the demo prints them."""
    tty = opts.output != "json" and opts.out.isatty()
    changed = asyncio.Event()
    state: dict[str, Any] = {"canary": canary, "gone": False}
    by_name = {str((e.get("metadata") or {}).get("name")): e for e in events}

    async def canaries() -> None:
        async for kind, obj in follow(client, CANARY, namespace, rv):
            if (obj.get("metadata") or {}).get("name") != name:
                continue
            state["canary"], state["gone"] = obj, kind == "DELETED"
            changed.set()

    async def event_stream() -> None:
        if not events_rv:
            return
        async for kind, obj in follow(client, EVENT, namespace, events_rv):
            if is_event_of(obj, name):
                key = str((obj.get("metadata") or {}).get("name"))
                if kind == "DELETED":
                    by_name.pop(key, None)
                else:
                    by_name[key] = obj
                changed.set()

    tasks = [asyncio.create_task(canaries()), asyncio.create_task(event_stream())]
    seen: dict[str, int] = {}
    steps: list[tuple[render.Check, ...]] = []
    last_key: tuple[Any, ...] | None = None
    started = time.monotonic()
    try:
        while True:
            evs = list(by_name.values())
            render.record_step(steps, render.progress_of(state["canary"]))
            if tty or opts.output == "json":
                _show(opts, state["canary"], evs, live=tty, steps=steps)
            else:
                for line in render.new_events(seen, evs):
                    print(line.strip(), file=opts.out, flush=True)
                p = render.progress_of(state["canary"])
                if p.key() != last_key:
                    print(render.render(p, time.monotonic() - started).strip(), file=opts.out, flush=True)
                    last_key = p.key()
            if state["gone"]:
                print(f"canary {namespace}/{name} was deleted", file=opts.err)
                return wait_result.EXIT_INVALID
            for t in tasks:
                if t.done() and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0 if tty else None):
                    await changed.wait()
            changed.clear()
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, ApiError, OSError):
                await t


# ---- wait ----


async def wait_command(opts: Options, name: str, revision: str | None, seconds: float) -> int:
    timeout = seconds
    namespace = opts.namespace or "default"
    progress = opts.err if opts.output == "json" else opts.out
    result: dict[str, Any] = {"namespace": namespace, "name": name, "revision": None}

    def finish(code: int, reason: str) -> int:
        result.update(exitCode=code, reason=reason,
                      result={0: "promoted", 1: "failed", 2: "timeout", 3: "invalid"}[code])
        if opts.output == "json":
            print(_json(result), file=opts.out, flush=True)
        if code == 0:
            print(reason, file=progress, flush=True)
        else:
            print(f"kubectl canary wait: {reason}", file=opts.err, flush=True)
        return code

    async def body(client: KubeClient) -> int:
        try:
            canary, rv = await get_canary(client, namespace, name)
            wanted = wait_result.revision_of(await target_deployment(client, canary), revision)
        except (ConsoleError, wait_result.RevisionError) as err:
            return finish(wait_result.EXIT_INVALID, str(err))
        result["revision"] = wanted
        print(f"waiting for canary {namespace}/{name} revision {wanted} (timeout {timeout:g}s)",
              file=progress, flush=True)
        verdict = wait_result.judge(canary, wanted, False)
        last = ""
        try:
            async with asyncio.timeout(timeout):
                events = follow(client, CANARY, namespace, rv)
                while True:
                    if verdict.reason != last:
                        print(verdict.reason, file=progress, flush=True)
                        last = verdict.reason
                    if verdict.code is not None:
                        return finish(verdict.code, verdict.reason)
                    async for kind, obj in events:
                        if (obj.get("metadata") or {}).get("name") != name:
                            continue
                        if kind == "DELETED":
                            return finish(wait_result.EXIT_INVALID, f"canary {namespace}/{name} was deleted")
                        verdict = wait_result.judge(obj, wanted, verdict.seen)
                        break
        except TimeoutError:
            return finish(wait_result.EXIT_TIMEOUT,
                          f"timed out after {timeout:g}s; last seen: {verdict.reason}")

    return await _with_client(opts, body)
