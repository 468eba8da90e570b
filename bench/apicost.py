"""API requests of one operator counted from the API server's audit log (not from self-reporting): the
requests that completed between two byte offsets of the log, by identity and user agent."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.writekinds import kind_of
from e2e.bed.audit import AuditEvent, parse_event

READS = frozenset({"get", "list"})
WRITES = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class Who:
    """Which requests are the operator's: a user-agent prefix (``needle`` is a cheap byte prefilter)."""

    user_agent_prefix: str
    username: str | None = None

    def matches(self, ev: AuditEvent) -> bool:
        return ev.user_agent.startswith(self.user_agent_prefix) and (
            self.username is None or ev.username == self.username)

    @property
    def needle(self) -> bytes:
        return json.dumps(self.user_agent_prefix)[:-1].encode()


@dataclass(frozen=True)
class Cost:
    reads: int
    writes: int
    watches: int
    by_verb_resource: dict[str, int]
    by_kind: dict[str, int] = field(default_factory=dict)  # writes only (bench/writekinds.py)

    def plus(self, other: Cost) -> Cost:
        """Both counts together (e.g. a round's window and the writes of its tail)."""
        verbs = Counter(self.by_verb_resource) + Counter(other.by_verb_resource)
        kinds = Counter(self.by_kind) + Counter(other.by_kind)
        return Cost(self.reads + other.reads, self.writes + other.writes, self.watches + other.watches,
                    dict(verbs), dict(kinds))

    def per(self, units: float) -> tuple[float, float]:
        """(reads, writes) per unit (e.g. per canary per step)."""
        return (self.reads / units, self.writes / units) if units else (0.0, 0.0)


def stamp(ev: AuditEvent) -> float:
    """The event's stageTimestamp as seconds since the epoch (0 when absent)."""
    try:
        return dt.datetime.fromisoformat(ev.timestamp).timestamp()
    except ValueError:
        return 0.0


def between(lo: float, hi: float) -> Callable[[AuditEvent], bool]:
    """Filter for ``count``: requests that completed between two wall-clock times."""
    return lambda ev: lo <= stamp(ev) <= hi


def offset(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def completed(path: Path, start: int, end: int, needle: bytes) -> Iterator[AuditEvent]:
    """The completed requests logged between two byte offsets whose line holds ``needle`` (a cheap byte
    prefilter before JSON parsing; callers still check the parsed fields)."""
    with path.open("rb") as fh:
        fh.seek(start)
        data = fh.read(max(0, end - start))
    for line in data.splitlines():
        if needle not in line or b'"ResponseComplete"' not in line:
            continue
        try:
            ev = parse_event(json.loads(line))
        except (json.JSONDecodeError, AttributeError):
            continue
        if ev.stage == "ResponseComplete":
            yield ev


def count(path: Path, start: int, end: int, who: Who,
          extra: Callable[[AuditEvent], bool] | None = None) -> Cost:
    """Completed requests of ``who`` logged between byte ``start`` and ``end`` (a half line is skipped)."""
    verbs: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for ev in completed(path, start, end, who.needle):
        if not who.matches(ev) or (extra is not None and not extra(ev)):
            continue
        res = ev.resource + (f"/{ev.subresource}" if ev.subresource else "")
        verbs[f"{ev.verb} {res}"] += 1
        if ev.verb in WRITES:
            kinds[kind_of(ev)] += 1
    reads = sum(n for k, n in verbs.items() if k.split()[0] in READS)
    writes = sum(n for k, n in verbs.items() if k.split()[0] in WRITES)
    watches = sum(n for k, n in verbs.items() if k.split()[0] == "watch")
    return Cost(reads, writes, watches, dict(verbs), dict(kinds))


def is_write(ev: AuditEvent) -> bool:
    """Filter for ``count``: writes only."""
    return ev.verb in WRITES


def received(ev: AuditEvent) -> float:
    """When the API server received the request (seconds since the epoch)."""
    try:
        return dt.datetime.fromisoformat(str(ev.raw.get("requestReceivedTimestamp"))).timestamp()
    except ValueError:
        return 0.0


def first_writes(path: Path, start: int, end: int, who: Who, trigger_agent: str,
                 namespace: str) -> dict[str, float]:
    """Per target name: seconds from the completion of the benchmark's pod-template write (``trigger_agent``)
    to the API server's receipt of the operator's first write about that canary (its Canary, its
    Deployments, its Events): the operator's own reaction, without the API server's write latency."""
    triggers: dict[str, float] = {}
    firsts: dict[str, float] = {}
    for ev in completed(path, start, end, f'"namespace":"{namespace}"'.encode()):
        if ev.namespace != namespace or ev.verb not in WRITES:
            continue
        if ev.user_agent == trigger_agent and ev.resource == "deployments":
            triggers.setdefault(ev.name, stamp(ev))
            continue
        if not who.matches(ev):
            continue
        name = ev.name.split(".")[0] if ev.resource == "events" else ev.name.removesuffix("-primary")
        t = received(ev)
        if name in triggers and t >= triggers[name] and name not in firsts:
            firsts[name] = t - triggers[name]
    return firsts


def write_latencies(path: Path, start: int, end: int, namespace: str) -> list[float]:
    """Server-side latency (received → response complete) of every write in ``namespace``, by anyone: how
    loaded the API server was, the context for every other figure."""
    out: list[float] = []
    for ev in completed(path, start, end, f'"namespace":"{namespace}"'.encode()):
        if ev.namespace == namespace and ev.verb in WRITES:
            out.append(stamp(ev) - received(ev))
    return out


def canary_of(ev: AuditEvent) -> str:
    """The canary (= target) name a request is about: its Canary, Deployments, Services,
    DestinationRules, VirtualService (``<name>``, ``-primary``, ``-canary``) or Events (``<name>.<id>``)."""
    if ev.resource == "events":
        return ev.name.split(".")[0]
    return ev.name.removesuffix("-primary").removesuffix("-canary")


def count_in_windows(path: Path, start: int, end: int, who: Who, namespace: str,
                     windows: dict[str, tuple[float, float]]) -> Cost:
    """Requests of ``who`` about each canary, completed inside that canary's own (wall-clock) window."""
    def inside(ev: AuditEvent) -> bool:
        win = windows.get(canary_of(ev))
        return ev.namespace == namespace and win is not None and win[0] <= stamp(ev) <= win[1]

    return count(path, start, end, who, inside)


def status_writes(path: Path, start: int, end: int, who: Who,
                  namespace: str) -> dict[str, list[tuple[float, float]]]:
    """Per Canary name: (received, completed) wall-clock times of each of ``who``'s Canary status writes, in
    log order: where a late step's time went (bench/lateparts.py)."""
    out: dict[str, list[tuple[float, float]]] = {}
    for ev in completed(path, start, end, who.needle):
        if (ev.namespace == namespace and ev.resource == "canaries" and ev.subresource == "status"
                and ev.verb in WRITES and who.matches(ev)):
            out.setdefault(ev.name, []).append((received(ev), stamp(ev)))
    for rows in out.values():
        rows.sort(key=lambda row: row[1])
    return out
