"""What the simulated app answers: podinfo's endpoints, plus the bed's per-workload faults."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

import orjson

from e2e.mesh.routing import Behaviour

MAX_DELAY = 30.0  # seconds; bounds /delay/{s} and BED_LATENCY_MS


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def text(status: int, message: str) -> Reply:
    return Reply(status, (message.rstrip("\n") + "\n").encode(), "text/plain")


async def answer(method: str, path: str, workload: str, b: Behaviour, rng: random.Random) -> Reply:
    """podinfo's ``/``, ``/status/{code}``, ``/delay/{seconds}``, ``/healthz``, ``/readyz``, ``/version``,
    ``POST /token``. ``BED_LATENCY_MS`` is added to every request and ``BED_ERROR_PERCENT`` of them answer
    500 (health probes excepted, as a failing app may still pass its probes)."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if parts in (["healthz"], ["readyz"]):
        return Reply(200, b'{"status":"OK"}')
    if b.latency_ms > 0:
        await asyncio.sleep(min(b.latency_ms / 1000, MAX_DELAY))
    if b.error_percent > 0 and rng.random() * 100 < b.error_percent:
        return Reply(500, b'{"status":500,"message":"injected by BED_ERROR_PERCENT"}')
    if len(parts) == 2 and parts[0] == "status":
        try:
            code = int(parts[1])
        except ValueError:
            return Reply(400, b'{"status":400,"message":"bad status code"}')
        if not 100 <= code <= 599:
            return Reply(400, b'{"status":400,"message":"bad status code"}')
        return Reply(code, orjson.dumps({"status": code}))
    if len(parts) == 2 and parts[0] == "delay":
        try:
            seconds = float(parts[1])
        except ValueError:
            return Reply(400, b'{"status":400,"message":"bad delay"}')
        await asyncio.sleep(min(max(seconds, 0.0), MAX_DELAY))
        return Reply(200, orjson.dumps({"delay": parts[1]}))
    if parts == ["token"]:
        if method != "POST":
            return Reply(405, b'{"status":405}')
        return Reply(200, orjson.dumps({"token": f"bed-token-{workload}", "expires_at": "never"}))
    if parts == ["version"]:
        return Reply(200, orjson.dumps({"version": b.version, "commit": "bed"}))
    if parts and parts != ["api", "info"]:
        return Reply(404, orjson.dumps({"status": 404, "message": "not found"}))
    return Reply(
        200,
        orjson.dumps(
            {
                "hostname": f"{workload}-bed",
                "version": b.version,
                "revision": "bed",
                "color": "#34577c",
                "message": f"greetings from podinfo v{b.version}",
                "runtime": "bed-mesh",
            }
        ),
    )
