"""Writes sorted by kind (bench/writekinds.py), as the benchmark reads them from the audit log: plain tables
of audit records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import apicost
from bench.writekinds import kind_of, table
from e2e.bed.audit import AuditEvent, parse_event


def ev(verb: str, resource: str, name: str, sub: str = "", agent: str = "canaryd/x") -> dict[str, object]:
    return {"stage": "ResponseComplete", "verb": verb, "userAgent": agent, "user": {"username": "u"},
            "objectRef": {"resource": resource, "name": name, "namespace": "ns", "subresource": sub},
            "stageTimestamp": "2026-12-06T08:00:00.000000Z", "responseStatus": {"code": 200}}


def parsed(*args: str) -> AuditEvent:
    return parse_event(ev(*args))


@pytest.mark.parametrize(("args", "kind"), [
    (("update", "canaries", "app", "status"), "Canary status update"),
    (("patch", "canaries", "app"), "Canary patch"),
    (("patch", "virtualservices", "app"), "VirtualService patch"),
    (("patch", "deployments", "app"), "Deployment target patch"),
    (("patch", "deployments", "app-primary"), "Deployment primary patch"),
    (("update", "deployments", "app", "scale"), "Deployment target/scale update"),
    (("create", "events", "app.1234"), "Event create"),
    (("patch", "events", "app.1234"), "Event patch"),
    (("create", "services", "app-canary"), "Service create"),
    (("update", "horizontalpodautoscalers", "app-primary"), "HPA update"),
    (("update", "leases", "canaryd"), "Lease update"),
    (("create", "widgets", "w", "x"), "widgets/x create"),
])
def test_kind_of(args: tuple[str, ...], kind: str) -> None:
    assert kind_of(parsed(*args)) == kind


def test_table_divides_and_orders() -> None:
    text = table([("a", {"Event create": 4, "Canary status update": 6}, 2.0),
                  ("b", {"VirtualService patch": 3}, 0.0)])
    lines = text.splitlines()
    assert lines[0] == "| writes by kind | a | b |"
    assert lines[2] == "| Canary status update | 3.00 | – |"
    assert lines[3] == "| VirtualService patch | 0.00 | – |"
    assert lines[4] == "| Event create | 2.00 | – |"
    assert lines[5] == "| **all writes** | **5.00** | – |"


def test_count_sorts_only_the_operators_writes(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    rows = [ev("update", "canaries", "app", "status"), ev("update", "canaries", "app", "status"),
            ev("create", "events", "app.1"), ev("get", "canaries", "app"),
            ev("patch", "deployments", "app", agent="someone-else")]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cost = apicost.count(log, 0, apicost.offset(log), apicost.Who("canaryd/"))
    assert (cost.reads, cost.writes) == (1, 3)
    assert cost.by_kind == {"Canary status update": 2, "Event create": 1}
    writes = apicost.count(log, 0, apicost.offset(log), apicost.Who("canaryd/"), apicost.is_write)
    assert (writes.reads, writes.writes) == (0, 3)  # a round's tail counts the operator's writes alone
