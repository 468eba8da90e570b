from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from canaryd.actuators.events import EventRecorder
from canaryd.analysis.checks import default_registry
from canaryd.cache.index import CanaryIndex
from canaryd.cache.store import Store
from canaryd.kube.client import KubeClient
from canaryd.kube.config import ClusterConfig, TokenSource
from canaryd.notify.notifier import Notifier
from canaryd.runtime.context import Context
from canaryd.runtime.crash import CrashPoints
from canaryd.runtime.metrics import Metrics
from canaryd.settings import Settings

from .fakeapi import FakeApi, start


@dataclass
class Rig:
    api: FakeApi
    ctx: Context
    store: Store


@pytest.fixture
async def api() -> AsyncIterator[FakeApi]:
    fake = FakeApi()
    runner = await start(fake)
    yield fake
    await runner.cleanup()


@pytest.fixture
async def rig(api: FakeApi) -> AsyncIterator[Rig]:
    """A canary task's Context against the fake API server (real client, real HTTP, a hand-filled cache)."""
    config = ClusterConfig(base_url=api.url, ssl_context=None, token=TokenSource(token="t0ken"))
    client = KubeClient(config, user_agent="canaryd-test/9", max_attempts=1, max_retry_wait=0.1)
    logger = logging.getLogger("canaryd.test")
    store = Store()
    async with aiohttp.ClientSession() as http:
        notifier = Notifier(http, logger, providers=lambda ns, name: None, secrets=_no_secrets)
        ctx = Context(settings=Settings(metrics_server="http://127.0.0.1:9"), client=client, store=store,
                      index=CanaryIndex(store), metrics=Metrics(), logger=logger, crash=CrashPoints({}),
                      http=http, events=EventRecorder(client, logger), checks=default_registry(),
                      notifier=notifier)
        yield Rig(api, ctx, store)
    await client.close()


async def _no_secrets(namespace: str, name: str) -> dict[str, str] | None:
    return None
