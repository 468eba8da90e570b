"""Reading a watch stream: newline-separated JSON events of any size, each turned into (type, object)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from canaryd.kube.errors import error_from_status


async def iter_lines(stream: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """Newline-separated records of a chunked body, of any length (aiohttp's ``readline`` refuses lines
    above its buffer limit; one watch event carries a whole object, which can be megabytes)."""
    buf = bytearray()
    async for chunk in stream.iter_any():
        start = len(buf)
        buf += chunk
        begin = 0
        while (nl := buf.find(b"\n", start)) >= 0:
            if nl > begin:
                yield bytes(buf[begin:nl])
            begin = start = nl + 1
        if begin:
            del buf[:begin]
    if buf.strip():
        yield bytes(buf)


def parse_event(line: bytes) -> tuple[str, dict[str, Any]]:
    """One watch line -> (type, object); ERROR events become exceptions."""
    event = orjson.loads(line)
    kind = str(event.get("type") or "")
    obj = event.get("object")
    if not isinstance(obj, dict):
        obj = {}
    if kind == "ERROR":
        code = obj.get("code")
        raise error_from_status(code if isinstance(code, int) else 500, obj, "WatchError")
    return kind, obj
