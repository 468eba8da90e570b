"""Events' ``source.component``: Flagger's ``flagger`` by default, so scripts selecting Events by component
keep working; ``--event-source-component`` sets another. Written through a real client to a fake API
server (tests/runtime/fakeapi.py), read back as the API server received them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from canaryd.actuators.events import EventRecorder
from canaryd.cli import build_parser, settings_from_args
from canaryd.kube.client import KubeClient
from canaryd.kube.config import ClusterConfig, TokenSource
from tests.runtime.fakeapi import FakeApi, start

CANARY: dict[str, Any] = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
                          "metadata": {"name": "podinfo", "namespace": "test", "uid": "u1"}}


@pytest.fixture
async def client() -> AsyncIterator[tuple[FakeApi, KubeClient]]:
    api = FakeApi()
    runner = await start(api)
    kube = KubeClient(ClusterConfig(base_url=api.url, ssl_context=None, token=TokenSource(token="t")),
                      user_agent="canaryd-test/9", max_attempts=1, max_retry_wait=0.1)
    yield api, kube
    await kube.close()
    await runner.cleanup()


def posted(api: FakeApi) -> list[dict[str, Any]]:
    return [r.body for r in api.requests if r.method == "POST" and r.path.endswith("/events")]


@pytest.mark.parametrize(("argv", "component"), [([], "flagger"),
                                                 (["--event-source-component", "canaryd"], "canaryd")])
async def test_event_source_component(client: tuple[FakeApi, KubeClient], argv: list[str],
                                      component: str) -> None:
    api, kube = client
    settings = settings_from_args(build_parser().parse_args(["run", *argv]))
    assert settings.event_source_component == component
    recorder = EventRecorder(kube, logging.getLogger("canaryd.test"),
                             component=settings.event_source_component)
    await recorder.record(CANARY, "New revision detected! Scaling up podinfo.test")
    (body,) = posted(api)
    assert body["source"] == {"component": component}
    assert body["reportingComponent"] == component
    assert body["reason"] == "Synced" and body["involvedObject"]["name"] == "podinfo"
