"""The notifier reads its receivers' answers up to its cap (``--max-webhook-answer-bytes``): an event
webhook or alert receiver that answers past it is counted as failed and logged with
``answer from <host> larger than N bytes``, never read into memory."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from canaryd.notify.destinations import GlobalNotifier
from canaryd.notify.notifier import Notifier
from tests.analysis.hostile import Hostile

from .test_delivery import Lines, logger, spec, until


@pytest.fixture
async def server() -> AsyncIterator[Hostile]:
    s = await Hostile().start()
    yield s
    await s.stop()


@pytest.mark.parametrize("kind", ["event", "alert"])
async def test_notifier_caps_answers(server: Hostile, kind: str) -> None:
    lines = Lines()
    size = 64 * 1024 * 1024  # far past what the kernel's socket buffers take in before the hang-up
    big = f"{server.url}/big/{size}" + ("" if kind == "event" else "/500")
    async with aiohttp.ClientSession() as session:
        n = Notifier(session, logger(lines), providers=lambda ns, name: None, secrets=_no_secret,
                     registry=CollectorRegistry(), max_answer_bytes=1024,
                     event_webhook=big if kind == "event" else "",
                     global_notifier=GlobalNotifier(slack_url=big) if kind == "alert" else None)
        n.start()
        try:
            if kind == "event":
                canary = {"metadata": {"name": "podinfo", "namespace": "test"}}
                n.event(canary, spec(), "Advance", warning=False, checksum="c")
            else:
                n.alert(spec(), "error", "Failed checks threshold reached 3")
            await until(lambda: n.sent.labels(kind=kind, result="failed")._value.get() == 1)
            await until(n.idle)
        finally:
            await n.stop()
    host = server.url.split("://")[1]
    assert f"answer from {host} larger than 1024 bytes" in lines.text()
    await until(lambda: server.finished == 1)
    assert server.sent < size // 2, server.sent  # cut off: the rest was never sent nor read


async def _no_secret(ns: str, name: str) -> dict[str, str] | None:
    return None

