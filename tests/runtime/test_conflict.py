"""A 409 on the status write re-decides (issue 10 §6): the task never writes a status computed from an
older object. The cache holds a stale Progressing Canary; on the server another writer has set Failed.
canaryd's first write (with the stale resourceVersion) gets 409; it reads the fresh object, decides again
from it, and Failed stays."""

from __future__ import annotations

import copy
from typing import Any

from canaryd.kube.resources import CANARY
from canaryd.runtime.task import CanaryTask

from .conftest import Rig

NS = "team-a"


def a_canary(**status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": NS, "uid": "u-1", "generation": 1},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                 "service": {"port": 9898},
                 "analysis": {"interval": "1m", "threshold": 5, "stepWeight": 10, "maxWeight": 50}},
        "status": status,
    }


STALE = {"phase": "Progressing", "canaryWeight": 10, "failedChecks": 0, "iterations": 0}
FAILED = {"phase": "Failed", "canaryWeight": 0, "failedChecks": 5, "iterations": 0,
          "message": "Canary analysis failed, Deployment podinfo.team-a rolled back"}


async def test_a_conflict_decides_again_and_keeps_the_other_writers_failed(rig: Rig) -> None:
    stale = rig.api.put_object(CANARY, a_canary(**STALE))  # what canaryd's cache still holds
    rig.store.upsert("Canary", stale)
    failed = copy.deepcopy(stale)
    failed["status"] = FAILED
    rig.api.put_object(CANARY, failed)  # the other writer: a newer resourceVersion on the server

    await CanaryTask(rig.ctx, NS, "podinfo").reconcile()  # no target in the cache: decide writes why

    puts = rig.api.writes("PUT", "/status")
    assert [p.code for p in puts] == [409, 200], rig.api.requests
    assert puts[0].body is not None and puts[0].body["status"]["phase"] == "Progressing"  # the stale decision
    gets = [r for r in rig.api.requests if r.method == "GET" and r.path.endswith("/canaries/podinfo")]
    assert len(gets) == 1 and rig.api.requests.index(gets[0]) == rig.api.requests.index(puts[0]) + 1
    assert puts[1].body is not None and puts[1].body["status"]["phase"] == "Failed"  # decided from fresh
    server = rig.api.get_object(CANARY, NS, "podinfo")
    assert server is not None
    assert server["status"]["phase"] == "Failed"
    assert server["status"]["failedChecks"] == 5
    assert server["status"]["message"].startswith("target Deployment podinfo.team-a not found")


async def test_without_a_conflict_one_write(rig: Rig) -> None:
    current = rig.api.put_object(CANARY, a_canary(**STALE))
    rig.store.upsert("Canary", current)

    await CanaryTask(rig.ctx, NS, "podinfo").reconcile()

    puts = rig.api.writes("PUT", "/status")
    assert [p.code for p in puts] == [200]
    assert not [r for r in rig.api.requests if r.method == "GET"]  # GET-free when nobody else wrote
    server = rig.api.get_object(CANARY, NS, "podinfo")
    assert server is not None and server["status"]["phase"] == "Progressing"


async def test_conflicts_that_never_end_fail_the_pass(rig: Rig) -> None:
    """Another writer that wins every time: bounded re-decisions, then an error (the task backs off)."""
    current = rig.api.put_object(CANARY, a_canary(**STALE))
    rig.store.upsert("Canary", current)
    rig.api.before = lambda method, path: 409 if method == "PUT" else None

    task = CanaryTask(rig.ctx, NS, "podinfo")
    try:
        await task.reconcile()
    except RuntimeError as err:
        assert "conflicted 5 times" in str(err)
    else:
        raise AssertionError("a pass that can never write its status must fail")
    assert len(rig.api.writes("PUT", "/status")) == 5
