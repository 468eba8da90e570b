"""The console's connection: the user's kubeconfig and permissions, Canaries listed and then followed by
watch (resumed from the last resourceVersion, relisted when it is too old), never polled."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from canaryd.kube.client import KubeClient, TransientError
from canaryd.kube.errors import ApiError, Gone, NotFound
from canaryd.kube.resources import CANARY, DEPLOYMENT, EVENT, Resource
from canaryd.version import version

NO_CRD = ("this cluster has no Canary resources (canaries.flagger.app is not served): install canaryd's "
          "CRDs first (kubectl apply -k manifests/)")


class ConsoleError(Exception):
    """A one-line reason the command cannot go on (exit code 3)."""


@dataclass(frozen=True)
class Target:
    kubeconfig: str | None
    context: str | None
    namespace: str | None  # None: all namespaces (``-A``)


def kubeconfig_path(given: str | None) -> str | None:
    """``--kubeconfig``, else ``KUBECONFIG``, else ``~/.kube/config`` when it exists (as kubectl), else
    None (in-cluster)."""
    if given:
        return given
    if os.environ.get("KUBECONFIG"):
        return os.environ["KUBECONFIG"]
    home = Path.home() / ".kube" / "config"
    return str(home) if home.exists() else None


def context_namespace(kubeconfig: str | None, context: str | None) -> str:
    """The namespace of the kubeconfig's context (kubectl's default for ``-n``), else ``default``."""
    if not kubeconfig:
        return "default"
    current = context
    for path in kubeconfig.split(os.pathsep):
        try:
            doc = yaml.safe_load(Path(os.path.expanduser(path)).read_text())
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(doc, dict):
            continue
        current = current or doc.get("current-context")
        for entry in doc.get("contexts") or []:
            if isinstance(entry, dict) and entry.get("name") == current:
                ns = (entry.get("context") or {}).get("namespace")
                if ns:
                    return str(ns)
    return "default"


async def connect(kubeconfig: str | None, context: str | None) -> KubeClient:
    from canaryd.kube.config import ConfigError

    try:
        return await KubeClient.from_config(kubeconfig, context=context,
                                            user_agent=f"kubectl-canary/{version()}")
    except ConfigError as err:
        raise ConsoleError(str(err)) from None


def one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:400] or type(err).__name__


async def list_canaries(client: KubeClient, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
    """Canaries of ``namespace`` (all when None) and the list's resourceVersion; a cluster without the
    CRD says so in one line."""
    try:
        return await client.list(CANARY, namespace)
    except NotFound:
        raise ConsoleError(NO_CRD) from None
    except ApiError as err:
        raise ConsoleError(f"cannot list canaries: {one_line(err)}") from None


async def get_canary(client: KubeClient, namespace: str, name: str) -> tuple[dict[str, Any], str]:
    """One Canary and a resourceVersion to watch from (a list of its namespace: tells a missing CRD from a
    missing Canary)."""
    items, rv = await list_canaries(client, namespace)
    for obj in items:
        if (obj.get("metadata") or {}).get("name") == name:
            return obj, rv
    raise ConsoleError(f"canary {namespace}/{name} not found")


async def target_deployment(client: KubeClient, canary: Mapping[str, Any]) -> dict[str, Any]:
    meta = canary.get("metadata") or {}
    ref = (canary.get("spec") or {}).get("targetRef") or {}
    ns, name = str(meta.get("namespace") or ""), str(ref.get("name") or "")
    if ref.get("kind", "Deployment") != "Deployment" or not name:
        raise ConsoleError(f"canary {ns}/{meta.get('name')} has no Deployment target")
    try:
        return await client.get(DEPLOYMENT, ns, name)
    except NotFound:
        raise ConsoleError(f"target Deployment {ns}/{name} not found") from None
    except ApiError as err:
        raise ConsoleError(f"cannot read Deployment {ns}/{name}: {one_line(err)}") from None


async def follow(client: KubeClient, res: Resource, namespace: str | None, rv: str,
                 timeout_seconds: int = 240) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Watch events of ``res`` after ``rv``, for ever: each stream the server ends is resumed from the
    last resourceVersion seen; when that is too old, the collection is listed again and every object
    comes as ``ADDED`` (consumers treat it as current state). Bookmarks only move ``rv``."""
    while True:
        try:
            async for kind, obj in client.watch(res, namespace, rv, timeout_seconds=timeout_seconds):
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                if kind != "BOOKMARK":
                    yield kind, obj
        except Gone:
            items, rv = await client.list(res, namespace)
            for obj in items:
                yield "ADDED", obj
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError, TransientError):
            await asyncio.sleep(1.0)  # the stream broke or the server is busy: resume from rv after a breath


async def events_of(client: KubeClient, namespace: str, name: str) -> tuple[list[dict[str, Any]], str]:
    """The Events of Canary ``name`` (kubectl describe's), and the list's resourceVersion."""
    items: list[dict[str, Any]] = []
    rv = ""
    with contextlib.suppress(ApiError):  # no right to read Events: the view goes without them
        all_items, rv = await client.list(EVENT, namespace)
        items = [e for e in all_items if is_event_of(e, name)]
    return items, rv


def is_event_of(event: Mapping[str, Any], name: str) -> bool:
    inv = event.get("involvedObject") or {}
    return inv.get("kind") == "Canary" and inv.get("name") == name
