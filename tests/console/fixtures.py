"""A loopback API server (tests/box's) holding one Canary and its Deployment, and a kubeconfig naming it,
so the console runs end to end through its own kubeconfig loading."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from canaryd.engine.revision import pod_template_hash
from canaryd.kube.client import KubeClient
from canaryd.kube.config import ClusterConfig, TokenSource
from canaryd.kube.resources import CANARY, DEPLOYMENT, EVENT
from tests.box.apiserver import ApiServer

NS = "shop"
IMAGE = "ghcr.io/stefanprodan/podinfo:6.0.1"
TEMPLATE = {"metadata": {"labels": {"app": "podinfo"}},
            "spec": {"containers": [{"name": "podinfod", "image": IMAGE}]}}
REVISION = pod_template_hash(TEMPLATE)


@dataclass
class Cluster:
    api: ApiServer
    kubeconfig: str
    client: KubeClient

    async def status(self, **fields: Any) -> None:
        """Write the Canary's status as canaryd would (status subresource, merge patch)."""
        await self.client.patch(CANARY, NS, "podinfo", {"status": fields}, subresource="status")

    async def event(self, name: str, message: str, warning: bool = False) -> None:
        await self.client.create(EVENT, NS, {
            "metadata": {"name": name, "namespace": NS}, "type": "Warning" if warning else "Normal",
            "reason": "Synced", "message": message, "lastTimestamp": "2026-01-01T00:00:01Z",
            "involvedObject": {"kind": "Canary", "name": "podinfo", "namespace": NS}})


def write_kubeconfig(path: Path, url: str) -> str:
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "box",
           "clusters": [{"name": "box", "cluster": {"server": url}}],
           "users": [{"name": "me", "user": {"token": "me"}}],
           "contexts": [{"name": "box", "context": {"cluster": "box", "user": "me", "namespace": NS}}]}
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    api = ApiServer()
    await api.start()
    api.rollouts = False
    client = KubeClient(ClusterConfig(base_url=api.url, ssl_context=None, token=TokenSource(token="t")))
    await client.create(DEPLOYMENT, NS, {"metadata": {"name": "podinfo", "namespace": NS}, "spec": {
        "selector": {"matchLabels": {"app": "podinfo"}}, "template": copy.deepcopy(TEMPLATE)}})
    await client.create(CANARY, NS, {
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                 "analysis": {"threshold": 2, "maxWeight": 50, "stepWeight": 10}}})
    try:
        yield Cluster(api, write_kubeconfig(tmp_path / "kubeconfig", api.url), client)
    finally:
        await client.close()
        await api.stop()
