"""A loopback SignalFlow WebSocket server (Splunk Observability Cloud's ``/v2/signalflow/connect``), as
Splunk's stream messages reference describes it
(https://dev.splunk.com/observability/docs/signalflow/messages/websocket_request_messages and
https://dev.splunk.com/observability/docs/signalflow/messages/stream_messages_specification): it
records every message canaryd sends, answers ``authenticate`` with ``authenticated`` (or, for a wrong
token, a channel-less ``error`` and a close), and answers ``execute`` with the queued script of
messages for the request's channel:

    fake.script = [control("STREAM_START"), metadata(7), data([(DOUBLE, 7, 0.5)]), control("END_OF_CHANNEL")]
    fake.mode = "hang"          never answer the execute message
    fake.mode = "refuse"        answer the handshake with 401 (no WebSocket)
    fake.mode = "close"         close the connection after the script (no END_OF_CHANNEL needed)
    fake.mode = "redirect"      answer the handshake with a redirect (to a WebSocket that would accept)
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from e2e.loopback import serve

LONG, DOUBLE, INT = 1, 2, 3
Frame = Callable[[str], str | bytes]  # channel -> a text (JSON) or binary message


def control(event: str, **extra: Any) -> Frame:
    return lambda ch: orjson.dumps({"type": "control-message", "channel": ch, "event": event,
                                    "timestampMs": 1704067800000, **extra}).decode()


def metadata(tsid: int) -> Frame:
    """A time series' properties (sent before its first data point)."""
    return lambda ch: orjson.dumps({"type": "metadata", "channel": ch, "tsId": f"AAAAA{tsid}",
                                    "properties": {"sf_metric": "requests.errors", "sf_key": ["service"],
                                                   "service": "podinfo", "sf_isPreQuantized": True,
                                                   "sf_type": "MetricTimeseries",
                                                   "sf_resolutionMs": 10000}}).decode()


def info(code: str = "JOB_RUNNING_RESOLUTION") -> Frame:
    return lambda ch: orjson.dumps({"type": "message", "channel": ch, "logicalTimestampMs": 1704067800000,
                                    "message": {"messageCode": code, "messageLevel": "INFO",
                                                "numInputTimeSeries": 1,
                                                "timestampMs": 1704067800000,
                                                "contents": {"resolutionMs": 10000}}}).decode()


def error(code: int, kind: str, message: str) -> Frame:
    return lambda ch: orjson.dumps({"type": "error", "channel": ch, "error": code, "errorType": kind,
                                    "message": message}).decode()


def encode_value(kind: int, value: float) -> bytes:
    if kind == LONG:
        return struct.pack(">q", int(value))
    if kind == DOUBLE:
        return struct.pack(">d", value)
    return struct.pack(">i", int(value)) + b"\0\0\0\0"


def data(points: list[tuple[int, int, float]], *, compressed: bool = False, channel: str = "") -> Frame:
    """A binary data message: header (version 1, type 5 = data, flags, reserved, channel), then the
    logical timestamp, the element count and each (value type, TSID, value)."""
    def frame(ch: str) -> bytes:
        body = struct.pack(">QI", 1704067800000, len(points))
        body += b"".join(struct.pack(">BQ", kind, tsid) + encode_value(kind, v) for kind, tsid, v in points)
        if compressed:
            body = gzip.compress(body)
        name = (channel or ch).encode().ljust(16, b"\0")
        return struct.pack(">BBBB16s", 1, 5, 1 if compressed else 0, 0, name) + body
    return frame


@dataclass
class SignalFlowFake:
    token: str = "sf-ORG-token-0123456789"
    script: list[Frame] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    mode: str = ""
    url: str = ""
    runner: web.AppRunner | None = None
    # the script for one execute message, computed when it arrives (the e2e test's live values)
    on_execute: Callable[[dict[str, Any]], Awaitable[list[Frame]]] | None = None

    async def start(self, tls: ssl.SSLContext | None = None) -> SignalFlowFake:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self.runner, port = await serve(app, tls, shutdown_timeout=0.1)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("type") == kind]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.paths.append(request.path)
        if self.mode == "refuse":
            return web.Response(status=401, text='{"message":"unauthorized"}')
        if self.mode == "redirect" and request.path != "/elsewhere/connect":
            raise web.HTTPFound("/elsewhere/connect")
        if request.path not in ("/v2/signalflow/connect", "/elsewhere/connect"):
            return web.Response(status=404)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                await ws.close()
                break
            doc = orjson.loads(msg.data)
            self.received.append(doc)
            if doc.get("type") == "authenticate":
                if doc.get("token") != self.token:  # a bad token is echoed, as some servers do
                    await ws.send_str(orjson.dumps({"type": "error", "error": 401, "message":
                                                    f"Invalid auth token {doc.get('token')}"}).decode())
                    await ws.close()
                    break
                await ws.send_str('{"type":"authenticated","orgId":"ORG1","userId":"USER1"}')
            elif doc.get("type") == "execute":
                if self.mode == "hang":
                    await asyncio.sleep(3600)
                script = self.script if self.on_execute is None else await self.on_execute(doc)
                for frame in script:
                    out = frame(str(doc.get("channel")))
                    if isinstance(out, bytes):
                        await ws.send_bytes(out)
                    else:
                        await ws.send_str(out)
                if self.mode == "close":
                    await ws.close()
                    break
        return ws
