"""The Event aggregation map stays bounded by the live Canaries (issue 17, found by bench/soak.py): a
Canary's distinct messages are capped, a deleted Canary's entries go, the whole map is capped, and a message
repeated all along keeps being aggregated. Written through a real client to a loopback fake API server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from canaryd.actuators.events import EventRecorder
from canaryd.kube.client import KubeClient
from canaryd.kube.config import ClusterConfig, TokenSource
from tests.runtime.fakeapi import FakeApi, start


@pytest.fixture
async def kube() -> AsyncIterator[tuple[FakeApi, KubeClient]]:
    api = FakeApi()
    runner = await start(api)
    client = KubeClient(ClusterConfig(base_url=api.url, ssl_context=None, token=TokenSource(token="t")),
                        user_agent="canaryd-test/9", max_attempts=1, max_retry_wait=0.1)
    yield api, client
    await client.close()
    await runner.cleanup()


def canary(name: str, namespace: str = "soak") -> dict[str, Any]:
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"}}


def creates(api: FakeApi) -> int:
    return sum(1 for r in api.requests if r.method == "POST" and r.path.endswith("/events"))


def bumps(api: FakeApi) -> int:
    return sum(1 for r in api.requests if r.method == "PATCH" and "/events/" in r.path)


async def test_a_thousand_distinct_messages_stay_under_the_per_canary_cap(
        kube: tuple[FakeApi, KubeClient]) -> None:
    api, client = kube
    recorder = EventRecorder(client, logging.getLogger("canaryd.test"), per_canary=64)
    for i in range(1000):
        await recorder.record(canary("podinfo"), f"Halt advancement: value {i} > 2")
        assert recorder.size() <= 64
    assert recorder.size() == 64 and creates(api) == 1000


async def test_a_repeated_message_stays_aggregated_among_many_others(
        kube: tuple[FakeApi, KubeClient]) -> None:
    api, client = kube
    recorder = EventRecorder(client, logging.getLogger("canaryd.test"), per_canary=8)
    for i in range(100):
        await recorder.record(canary("podinfo"), "Advance podinfo.soak canary weight 25")
        await recorder.record(canary("podinfo"), f"distinct {i}")
    assert creates(api) == 1 + 100 and bumps(api) == 99  # least recently used goes, not the oldest entry


async def test_a_deleted_canary_is_forgotten_and_the_whole_map_is_capped(
        kube: tuple[FakeApi, KubeClient]) -> None:
    _, client = kube
    recorder = EventRecorder(client, logging.getLogger("canaryd.test"), per_canary=4, max_remembered=50)
    for i in range(40):
        for k in range(4):
            await recorder.record(canary(f"app-{i}"), f"message {k}")
        assert recorder.size() <= 50
    assert recorder.size() == 50  # the least recently used Canaries' entries dropped first
    recorder.forget("soak", "app-39")
    recorder.forget("soak", "never-seen")
    assert recorder.size() == 46
