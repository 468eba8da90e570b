"""promote/abort/retry/pause/resume and history against a loopback API server. The test plays canaryd:
it reads the request annotation the CLI wrote and answers in status.lastRequest (as canaryd does); what
is under test is the CLI's side: the request's JSON, following it, the result printed and the exit code."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from typing import Any

import pytest

from canaryd.console.actions import ANNOTATION, NEVER_ACTED, action_command, history_command, make_request
from canaryd.console.commands import Options
from canaryd.console.kube import ConsoleError
from canaryd.kube.resources import CANARY
from tests.console.fixtures import IMAGE, NS, REVISION, Cluster, cluster

__all__ = ["cluster"]


def options(c: Cluster, output: str = "") -> Options:
    return Options(kubeconfig=c.kubeconfig, context=None, namespace=NS, output=output, out=io.StringIO(),
                   err=io.StringIO())


async def written_request(c: Cluster) -> dict[str, Any]:
    """Wait for the CLI's annotation, as canaryd's watch would see it."""
    async with asyncio.timeout(10):
        while True:
            obj = await c.client.get(CANARY, NS, "podinfo")
            raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
            if raw:
                request: dict[str, Any] = json.loads(raw)
                return request
            await asyncio.sleep(0.02)


async def answer(c: Cluster, request: dict[str, Any], result: str, message: str) -> None:
    await c.status(lastRequest={"id": request["id"], "action": request["action"], "result": result,
                                "message": message, "at": "2026-01-01T00:00:05Z"})


@pytest.mark.parametrize(("result", "code"), [("done", 0), ("refused", 1), ("ignored", 1)])
async def test_a_request_is_written_then_followed_to_canaryds_answer(cluster: Cluster, result: str,
                                                                     code: int) -> None:
    await cluster.status(phase="Progressing", canaryWeight=20, lastAppliedSpec=REVISION)
    opts = options(cluster)
    task = asyncio.create_task(action_command(opts, "podinfo", "abort", None, False, 20))
    request = await written_request(cluster)
    assert set(request) == {"id", "action", "revision"}
    assert request["action"] == "abort" and request["revision"] == REVISION
    assert uuid.UUID(request["id"]).version == 4
    await cluster.status(canaryWeight=30)  # another status write first: not the answer
    await asyncio.sleep(0)
    assert not task.done()
    await answer(cluster, {"id": str(uuid.uuid4()), "action": "abort"}, "done", "someone else's")
    await answer(cluster, request, result, "rolled back at weight 20%")
    async with asyncio.timeout(10):
        assert await task == code
    printed = opts.out.getvalue() + opts.err.getvalue()  # type: ignore[attr-defined]
    assert f"abort {result}: rolled back at weight 20%" in printed
    assert "someone else's" not in printed
    after = await cluster.client.get(CANARY, NS, "podinfo")
    assert after["status"]["canaryWeight"] == 30  # the CLI wrote only the annotation


async def test_promote_full_and_an_explicit_revision_with_json_output(cluster: Cluster) -> None:
    await cluster.status(phase="Progressing", lastAppliedSpec=REVISION)
    opts = options(cluster, output="json")
    task = asyncio.create_task(action_command(opts, "podinfo", "promote", "cd1:00000000000000aa", True, 20))
    request = await written_request(cluster)
    assert (request["action"], request["revision"], request["full"]) == ("promote", "cd1:00000000000000aa",
                                                                         True)
    await answer(cluster, request, "ignored", "names an older revision")
    async with asyncio.timeout(10):
        assert await task == 1
    out = json.loads(opts.out.getvalue())  # type: ignore[attr-defined]
    assert (out["id"], out["result"], out["exitCode"], out["message"]) == (
        request["id"], "ignored", 1, "promote ignored: names an older revision")


async def test_no_answer_at_all_says_canaryd_never_acted(cluster: Cluster) -> None:
    opts = options(cluster)
    assert await action_command(opts, "podinfo", "pause", None, False, 0.5) == 4
    assert NEVER_ACTED in opts.err.getvalue()  # type: ignore[attr-defined]
    request = await written_request(cluster)
    assert request["action"] == "pause" and "revision" not in request  # no run seen yet: any


async def test_canaryd_alive_but_not_answering_in_time_is_a_timeout(cluster: Cluster) -> None:
    opts = options(cluster)
    task = asyncio.create_task(action_command(opts, "podinfo", "resume", None, False, 1.5))
    await written_request(cluster)
    await cluster.status(phase="Progressing", canaryWeight=10)
    async with asyncio.timeout(10):
        assert await task == 2
    err = opts.err.getvalue()  # type: ignore[attr-defined]
    assert "timed out after 1.5s" in err and NEVER_ACTED not in err


async def test_a_missing_canary_is_exit_3_and_nothing_is_written(cluster: Cluster) -> None:
    opts = options(cluster)
    assert await action_command(opts, "nope", "retry", None, False, 5) == 3
    assert "canary shop/nope not found" in opts.err.getvalue()  # type: ignore[attr-defined]


def test_bad_requests_are_refused_before_anything_is_written() -> None:
    with pytest.raises(ConsoleError, match="unknown action"):
        make_request("undo", None)
    with pytest.raises(ConsoleError, match="--full goes with promote only"):
        make_request("abort", None, full=True)


async def test_history_prints_the_runs_newest_first(cluster: Cluster) -> None:
    opts = options(cluster)
    assert await history_command(opts, "podinfo") == 0
    assert "no run history yet" in opts.err.getvalue()  # type: ignore[attr-defined]
    await cluster.status(history=[
        {"revision": REVISION, "image": IMAGE, "startedAt": "2026-01-01T00:10:00Z", "endedAt": None,
         "outcome": None, "maxWeight": 20},
        {"revision": "cd1:00000000000000aa", "image": "podinfo:6.0.0", "startedAt": "2026-01-01T00:00:00Z",
         "endedAt": "2026-01-01T00:05:00Z", "outcome": "rolled back", "reason": "failed checks",
         "maxWeight": 30, "failedChecks": [{"name": "request-success-rate", "value": 91.5,
                                            "threshold": ">= 99"}]}])
    opts = options(cluster)
    assert await history_command(opts, "podinfo") == 0
    lines = opts.out.getvalue().splitlines()  # type: ignore[attr-defined]
    assert lines[0].split()[:3] == ["REVISION", "IMAGE", "STARTED"]
    assert lines[1].split()[:6] == [REVISION, IMAGE, "2026-01-01T00:10:00Z", "-", "running", "20%"]
    assert lines[2].endswith("rolled back   30%          failed checks; request-success-rate 91.5 (>= 99)")
    opts = options(cluster, output="json")
    assert await history_command(opts, "podinfo") == 0
    runs = json.loads(opts.out.getvalue())["history"]  # type: ignore[attr-defined]
    assert [r["maxWeight"] for r in runs] == [20, 30]


@pytest.mark.parametrize(("given", "written"), [
    (IMAGE, REVISION), (":6.0.1", REVISION), (REVISION[4:], REVISION), ("cd1:00000000000000aa", None)])
async def test_a_revision_is_a_hash_or_the_image_the_target_runs(cluster: Cluster, given: str,
                                                                  written: str | None) -> None:
    opts = options(cluster)
    assert await action_command(opts, "podinfo", "retry", given, False, 0.3) == 4
    assert (await written_request(cluster))["revision"] == (written or given)


async def test_another_image_is_refused_saying_what_the_target_runs(cluster: Cluster) -> None:
    opts = options(cluster)
    assert await action_command(opts, "podinfo", "retry", "podinfo:5.0.0", False, 5) == 3
    assert f"is not the one Deployment podinfo runs now ({IMAGE})" in opts.err.getvalue()  # type: ignore[attr-defined]
    canary = await cluster.client.get(CANARY, NS, "podinfo")
    assert ANNOTATION not in (canary["metadata"].get("annotations") or {})
