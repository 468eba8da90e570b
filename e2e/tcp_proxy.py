"""A loopback TCP forwarder to the API server that a test can cut (abort every connection and refuse new
ones) and resume: a real network outage for the client, nothing faked above TCP (TLS passes through, the
server's certificate names 127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    """Forwards ``127.0.0.1:listen_port`` to ``host:port`` once ``start()`` ran (in the test's loop)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.listen_port = 0
        self.down_bytes = 0  # bytes the upstream sent (what a client of the API server received)
        self.refusing = False
        self._conns: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.listen_port = self._server.sockets[0].getsockname()[1]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, down: bool) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(262144):
                if down:
                    self.down_bytes += len(data)
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            writer.transport.abort()
            return
        self._conns |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer, False), self._pipe(up_reader, writer, True))
        self._conns -= {writer, up_writer}

    def cut(self) -> None:
        self.refusing = True
        for w in list(self._conns):
            w.transport.abort()

    def resume(self) -> None:
        self.refusing = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
