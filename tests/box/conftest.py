"""A fresh box per test: its own API server, Prometheus and webhook receiver; every canaryd instance a
test starts is stopped at the end."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .harness import Box


@pytest.fixture
async def box() -> AsyncIterator[Box]:
    b = Box()
    await b.start()
    try:
        yield b
    finally:
        await b.stop()
