"""``promote``, ``abort``, ``retry``, ``pause``, ``resume`` and ``history``: a request is written on the
Canary as the ``canaryd.io/request`` annotation (a JSON merge patch, so plain ``kubectl annotate`` does the
same), then the Canary is watched until canaryd records ``status.lastRequest`` with the request's id.
canaryd never edits the annotation, so GitOps tools do not fight it.

Exit codes: 0 done, 1 refused or ignored, 2 timed out (canaryd wrote the Canary's status meanwhile but
has not answered yet), 3 not found or invalid, 4 canaryd never acted on the request (status untouched
for the whole wait: is it running?)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from canaryd.console import wait_result
from canaryd.console.commands import Options, _json, _with_client
from canaryd.console.kube import ConsoleError, follow, get_canary, one_line, target_deployment
from canaryd.kube.client import KubeClient
from canaryd.kube.errors import ApiError
from canaryd.kube.resources import CANARY

ANNOTATION = "canaryd.io/request"
ACTIONS = ("promote", "abort", "retry", "pause", "resume")
EXIT_DONE, EXIT_REFUSED, EXIT_NEVER_ACTED = 0, 1, 4
NEVER_ACTED = "canaryd never acted on the request (is it running?)"


def make_request(action: str, revision: str | None, full: bool = False,
                 request_id: str | None = None) -> dict[str, Any]:
    """The request's JSON (the contract's shape): a fresh uuid4, the action, the revision it targets."""
    if action not in ACTIONS:
        raise ConsoleError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if full and action != "promote":
        raise ConsoleError("--full goes with promote only")
    req: dict[str, Any] = {"id": request_id or str(uuid.uuid4()), "action": action}
    if revision:
        req["revision"] = revision
    if full:
        req["full"] = True
    return req


def request_patch(request: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch writing ``request`` as the annotation (compact JSON, as kubectl annotate would)."""
    return {"metadata": {"annotations": {ANNOTATION: orjson.dumps(dict(request)).decode()}}}


def answer_for(canary: Mapping[str, Any], request_id: str) -> dict[str, Any] | None:
    """canaryd's ``status.lastRequest`` when it answers ``request_id``, else None."""
    last = (canary.get("status") or {}).get("lastRequest")
    if isinstance(last, dict) and last.get("id") == request_id:
        return last
    return None


def exit_code(answer: Mapping[str, Any]) -> int:
    return EXIT_DONE if answer.get("result") == "done" else EXIT_REFUSED


def current_revision(canary: Mapping[str, Any]) -> str:
    """The revision of the run the user sees (status.lastAppliedSpec), empty when there is none."""
    return str((canary.get("status") or {}).get("lastAppliedSpec") or "")


async def resolve_revision(client: KubeClient, canary: Mapping[str, Any], given: str) -> str:
    """A hash as given (``cd1:…`` or its 16 hex digits); an image only when it is the one the target
    runs now (as ``wait --revision``), else a :class:`ConsoleError` saying why."""
    is_hash = given.startswith("cd1:") or (len(given) == 16 and all(c in "0123456789abcdef" for c in given))
    try:
        return wait_result.revision_of({} if is_hash else await target_deployment(client, canary), given)
    except wait_result.RevisionError as err:
        raise ConsoleError(str(err)) from None


async def write_request(client: KubeClient, namespace: str, name: str, action: str,
                        revision: str | None = None, full: bool = False) -> tuple[dict[str, Any],
                                                                                   dict[str, Any], str]:
    """Write a request on Canary ``namespace/name``; ``revision`` None means the run the user sees.
    Returns the request, the patched Canary and its resourceVersion (to follow from)."""
    canary, _ = await get_canary(client, namespace, name)
    if revision is None:
        revision = current_revision(canary)
    elif revision:
        revision = await resolve_revision(client, canary, revision)
    req = make_request(action, revision, full)
    try:
        patched = await client.patch(CANARY, namespace, name, request_patch(req))
    except ApiError as err:
        raise ConsoleError(f"cannot write the request on canary {namespace}/{name}: "
                           f"{one_line(err)}") from None
    rv = str((patched.get("metadata") or {}).get("resourceVersion") or "")
    return req, patched, rv


async def await_answer(client: KubeClient, namespace: str, name: str, request_id: str,
                       canary: Mapping[str, Any], rv: str, seen: dict[str, bool]) -> dict[str, Any]:
    """Follow the Canary by watch until canaryd answers ``request_id`` (no timeout here); sets
    ``seen["status"]`` when canaryd writes the status meanwhile (it is alive)."""
    answer = answer_for(canary, request_id)
    if answer is not None:
        return answer
    before = canary.get("status")
    async for kind, obj in follow(client, CANARY, namespace, rv):
        if (obj.get("metadata") or {}).get("name") != name:
            continue
        if kind == "DELETED":
            raise ConsoleError(f"canary {namespace}/{name} was deleted")
        if obj.get("status") != before:
            seen["status"] = True
        answer = answer_for(obj, request_id)
        if answer is not None:
            return answer
    raise ConsoleError("the watch ended")  # follow() never ends: for the type checker


async def action_command(opts: Options, name: str, action: str, revision: str | None, full: bool,
                         seconds: float) -> int:
    namespace = opts.namespace or "default"
    result: dict[str, Any] = {"namespace": namespace, "name": name, "action": action}

    def finish(code: int, text: str, answer: Mapping[str, Any] | None = None) -> int:
        if opts.output == "json":
            result.update(exitCode=code, message=text, result=(answer or {}).get("result"),
                          at=(answer or {}).get("at"))
            print(_json(result), file=opts.out, flush=True)
        elif code == 0:
            print(text, file=opts.out, flush=True)
        else:
            print(f"kubectl canary {action}: {text}", file=opts.err, flush=True)
        return code

    async def body(client: KubeClient) -> int:
        try:
            req, canary, rv = await write_request(client, namespace, name, action, revision, full)
        except ConsoleError as err:
            return finish(wait_result.EXIT_INVALID, str(err))
        result.update(id=req["id"], revision=req.get("revision"))
        if opts.output != "json":
            print(f"requested {action} of canary {namespace}/{name} revision "
                  f"{req.get('revision') or '(any)'} (id {req['id']})", file=opts.out, flush=True)
        seen = {"status": False}
        try:
            async with asyncio.timeout(seconds):
                answer = await await_answer(client, namespace, name, req["id"], canary, rv, seen)
        except TimeoutError:
            if seen["status"]:
                return finish(wait_result.EXIT_TIMEOUT, f"timed out after {seconds:g}s waiting for canaryd "
                              f"to act on request {req['id']}")
            return finish(EXIT_NEVER_ACTED, f"{NEVER_ACTED}: no answer to request {req['id']} after "
                          f"{seconds:g}s")
        except ConsoleError as err:
            return finish(wait_result.EXIT_INVALID, str(err))
        text = f"{action} {answer.get('result')}: {answer.get('message') or 'no message'}"
        return finish(exit_code(answer), text, answer)

    return await _with_client(opts, body)


# ---- history ----

HISTORY_COLUMNS = ("REVISION", "IMAGE", "STARTED", "ENDED", "OUTCOME", "MAX WEIGHT", "REASON")


def history_of(canary: Mapping[str, Any]) -> list[dict[str, Any]]:
    runs = (canary.get("status") or {}).get("history") or []
    return [r for r in runs if isinstance(r, dict)]


def _failed(run: Mapping[str, Any]) -> str:
    checks = [c for c in run.get("failedChecks") or [] if isinstance(c, dict)]
    return ", ".join(f"{c.get('name')} {c.get('value')} ({c.get('threshold')})" for c in checks)


def history_rows(canary: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """One row per run, newest first, as status.history keeps them."""
    rows: list[tuple[str, ...]] = []
    for run in history_of(canary):
        reason = str(run.get("reason") or "")
        failed = _failed(run)
        reason = "; ".join(x for x in (reason, failed) if x)
        max_weight = run.get("maxWeight")
        rows.append((str(run.get("revision") or ""), str(run.get("image") or ""),
                     str(run.get("startedAt") or ""), str(run.get("endedAt") or "-"),
                     str(run.get("outcome") or "running"), "" if max_weight is None else f"{max_weight}%",
                     reason))
    return rows


def history_table(rows: list[tuple[str, ...]]) -> list[str]:
    table = [HISTORY_COLUMNS, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(HISTORY_COLUMNS))]
    return ["   ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table]


async def history_command(opts: Options, name: str) -> int:
    namespace = opts.namespace or "default"

    async def body(client: KubeClient) -> int:
        canary, _ = await get_canary(client, namespace, name)
        runs = history_of(canary)
        if opts.output == "json":
            print(_json({"namespace": namespace, "name": name, "history": runs}), file=opts.out)
        elif not runs:
            print(f"canary {namespace}/{name} has no run history yet", file=opts.err)
        else:
            for line in history_table(history_rows(canary)):
                print(line, file=opts.out)
        return 0

    return await _with_client(opts, body)
