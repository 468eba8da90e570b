"""Splunk Observability Cloud (``splunk``): a SignalFlow program run over SignalFlow's WebSocket API, as
Flagger v1.44 runs it through Splunk's Go client: ``<stream address>/v2/signalflow/connect``, an
``authenticate`` message with the ``sf_token_key`` token, one ``execute`` of the template's program over
ten metric intervals ending now (``immediate``), then every data point until the channel ends. The value
is the last data point; points of more than one time series are an error (docs/providers.md).

A small client on aiohttp's WebSocket support, not an SDK: Splunk's Python client is synchronous (its
WebSocket transport runs a thread per computation), and the protocol canaryd needs is four messages.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from yarl import URL

from canaryd.analysis.bounded import excerpt
from canaryd.analysis.outbound import proxy_for
from canaryd.analysis.providers.protocol import ProviderError, ProviderNoValues, ProviderSettings
from canaryd.analysis.urls import host_of
from canaryd.model.providers import MetricProvider, MetricTemplate

NAME = "Splunk"
TOKEN_KEY = "sf_token_key"
SIGNALFLOW_PATH = "/v2/signalflow"
WINDOW_INTERVALS = 10  # start = now - 10 x interval, as Flagger
CHANNEL = "ch-1"  # the Go client's first channel name
HEADER = struct.Struct(">BBBB16s")  # version, message type, flags, reserved, channel (NUL-padded)
DATA_HEADER = struct.Struct(">QI")  # logical timestamp (ms), element count
POINT = struct.Struct(">BQ8s")  # value type, TSID, value (8 bytes, big-endian)
COMPRESSED, JSON_ENCODED = 1, 2  # header flags
LONG, DOUBLE, INT = 1, 2, 3  # value types; any other type is no value
END_EVENTS = ("END_OF_CHANNEL", "CHANNEL_ABORT")


def stream_url(address: str) -> str:
    """Flagger's rewrite of the template's address: ``/v2/signalflow`` appended, then the first
    ``http`` replaced by ``ws`` and the first ``api`` by ``stream`` (``https://api.us1.signalfx.com`` ->
    ``wss://stream.us1.signalfx.com/v2/signalflow``; a ``wss://stream…`` address stays as it is)."""
    return (address + SIGNALFLOW_PATH).replace("http", "ws", 1).replace("api", "stream", 1)


@dataclass(frozen=True)
class Point:
    kind: int
    tsid: int
    raw: bytes

    def value(self) -> float:
        if self.kind == LONG:
            return float(struct.unpack(">q", self.raw)[0])
        if self.kind == DOUBLE:
            return float(struct.unpack(">d", self.raw)[0])
        return float(struct.unpack(">i", self.raw[:4])[0])  # INT: the first four bytes


class Splunk:
    def address_of(self, provider: MetricProvider) -> str:
        """Where a query of ``provider`` goes, for messages."""
        return stream_url(provider.address) if provider.address else "<no address>"

    async def query(self, session: aiohttp.ClientSession, template: MetricTemplate, rendered_query: str,
                    secrets: Mapping[str, str], settings: ProviderSettings) -> float:
        if not template.provider.address:
            raise ProviderError("splunk endpoint is not set")
        if TOKEN_KEY not in secrets:
            raise ProviderError(f"splunk credentials does not contain {TOKEN_KEY}")
        url = URL(stream_url(template.provider.address) + "/connect")
        if url.scheme not in ("ws", "wss") or not url.host:
            raise ProviderError(f"splunk address {excerpt(template.provider.address, limit=100)} is not a "
                                "valid URL")
        now_ms = int(settings.now() * 1000)
        execute = {"type": "execute", "program": rendered_query, "channel": CHANNEL,
                   "start": now_ms - int(WINDOW_INTERVALS * settings.interval_seconds * 1000),
                   "stop": now_ms, "resolution": 0, "maxDelay": 0, "immediate": True, "timezone": ""}
        run = _Run(str(url), secrets[TOKEN_KEY], settings.max_answer_bytes)
        try:
            async with asyncio.timeout(settings.timeout):
                points = await run.execute(session, execute, ssl=not template.provider.insecure_skip_verify)
        except TimeoutError:
            raise ProviderError(f"{run.where} timed out after {settings.timeout:g}s") from None
        except aiohttp.WSServerHandshakeError as e:
            said = excerpt(e.message, str(url), run.token, limit=60)
            raise ProviderError(f"{run.where} refused the WebSocket connection: {e.status} {said}") from None
        except (aiohttp.ClientError, ValueError) as e:
            text = excerpt(str(e) or type(e).__name__, str(url), run.token)
            raise ProviderError(f"{run.where} unreachable: {text}") from None
        return last_value(points)


def last_value(points: list[Point]) -> float:
    """Flagger's choice: the last point with a value; points of two or more time series are an error."""
    valued = [p for p in points if p.kind in (LONG, DOUBLE, INT)]
    if not valued:
        raise ProviderNoValues("invalid response: no values found")
    if len({p.tsid for p in valued}) > 1:
        raise ProviderError("invalid response: query returned multiple values")
    return valued[-1].value()


class _Run:
    """One computation on one connection: what was read so far, bounded by ``limit`` bytes."""

    def __init__(self, url: str, token: str, limit: int) -> None:
        self.url, self.token, self.limit = url, token, limit
        self.where = f"{NAME} {host_of(url)}"
        self.read = 0
        self.points: list[Point] = []

    async def execute(self, session: aiohttp.ClientSession, execute: dict[str, Any], *,
                      ssl: bool) -> list[Point]:
        async with session.ws_connect(self.url, ssl=ssl, max_msg_size=self.limit, autoping=True,
                                      heartbeat=None, proxy=proxy_for(self.url)) as ws:
            response = getattr(ws, "_response", None)  # aiohttp follows redirects on the handshake
            if getattr(response, "history", ()):
                raise ProviderError(f"{self.where} answered the WebSocket handshake with a redirect, not "
                                    "followed: the token is sent only to the template's address")
            await ws.send_str(orjson.dumps({"type": "authenticate", "token": self.token}).decode())
            await ws.send_str(orjson.dumps(execute).decode())
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    if self._text(msg.data.encode("utf-8", "replace")):
                        return self.points
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    self._binary(msg.data)
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    raise self._closed(ws, msg.data)
        return self.points  # closed without END_OF_CHANNEL: the Go client then ends the computation too

    def _count(self, size: int) -> None:
        self.read += size
        if self.read > self.limit:
            raise ProviderError(f"{NAME}: answer from {host_of(self.url)} larger than {self.limit} bytes")

    def _unreadable(self, raw: bytes) -> ProviderError:
        return ProviderError(f"{self.where} sent an unreadable message: {excerpt(raw, '', self.token)}")

    def _closed(self, ws: aiohttp.ClientWebSocketResponse, err: object) -> ProviderError:
        if isinstance(err, aiohttp.WebSocketError) and err.code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG:
            return ProviderError(f"{NAME}: answer from {host_of(self.url)} larger than {self.limit} bytes")
        text = excerpt(str(err) or type(err).__name__, self.url, self.token)
        return ProviderError(f"{self.where} closed the connection (code {ws.close_code}): {text}")

    def _text(self, raw: bytes) -> bool:
        """A JSON message; True when it ends the computation."""
        self._count(len(raw))
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise self._unreadable(raw) from None
        if not isinstance(doc, dict):
            raise self._unreadable(raw)
        kind, channel = doc.get("type"), doc.get("channel")
        if channel not in (None, "", CHANNEL):
            return False
        if kind == "error":  # a channel-less error answers the authenticate message (a bad token)
            raise ProviderError(f"{self.where}: error executing query: {self._error(doc)}")
        return kind == "control-message" and doc.get("event") in END_EVENTS

    def _error(self, doc: dict[str, Any]) -> str:
        """The Go client's ``code (errorType): message``."""
        code, kind, message = doc.get("error"), doc.get("errorType"), doc.get("message")
        text = str(code if isinstance(code, int | float) and not isinstance(code, bool) else 0)
        text = text.removesuffix(".0")
        if isinstance(kind, str) and kind:
            text += f" ({kind})"
        if isinstance(message, str) and message:
            text += f": {message}"
        return excerpt(text, self.url, self.token, limit=300)

    def _binary(self, raw: bytes) -> None:
        """A binary data message (https://dev.splunk.com/observability/docs/signalflow/messages/
        stream_messages_specification): a 20-byte header, then a timestamp, a count and 17-byte points."""
        self._count(len(raw))
        if len(raw) <= HEADER.size:
            raise self._unreadable(raw)
        _, _, flags, _, name = HEADER.unpack_from(raw)
        if name.split(b"\0", 1)[0].decode("utf-8", "replace") != CHANNEL:
            return
        body = raw[HEADER.size:]
        if flags & COMPRESSED:
            body = self._gunzip(body)
        if flags & JSON_ENCODED:
            return  # the Go client cannot read these and drops them; so does canaryd
        if len(body) < DATA_HEADER.size:
            raise self._unreadable(raw)
        _, count = DATA_HEADER.unpack_from(body)
        if len(body) < DATA_HEADER.size + count * POINT.size:
            raise self._unreadable(raw)
        for i in range(count):
            kind, tsid, value = POINT.unpack_from(body, DATA_HEADER.size + i * POINT.size)
            self.points.append(Point(kind, tsid, value))

    def _gunzip(self, body: bytes) -> bytes:
        """A compressed message, inflated up to what is left of the size cap."""
        room = max(0, self.limit - self.read)
        inflate = zlib.decompressobj(wbits=31)
        try:
            out = inflate.decompress(body, room + 1)
        except zlib.error:
            raise self._unreadable(body) from None
        self._count(len(out))
        return out
