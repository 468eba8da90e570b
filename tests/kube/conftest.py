from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from canaryd.kube.client import KubeClient
from canaryd.kube.config import ClusterConfig, TokenSource

from .scripted import Scripted, start


@pytest.fixture
async def server() -> AsyncIterator[Scripted]:
    scripted = Scripted()
    runner = await start(scripted)
    yield scripted
    await runner.cleanup()


@pytest.fixture
async def client(server: Scripted) -> AsyncIterator[KubeClient]:
    config = ClusterConfig(base_url=server.url, ssl_context=None, token=TokenSource(token="t0ken"))
    c = KubeClient(config, user_agent="canaryd-test/9", max_attempts=3, max_retry_wait=2.0)
    yield c
    await c.close()
