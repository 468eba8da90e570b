"""Informers and the watch cache against the test bed's real API server.

What is shown: list+watch follows creates/updates/deletes; a real 410 (a watch resumed from a
resourceVersion the server no longer has) leads to a relist that drops objects deleted meanwhile;
a cut connection (a TCP proxy between canaryd and the API server stops forwarding) is survived with
backoff; bookmarks move the resourceVersion forward; status writes retry a real 409 on fresh data and
are GET-free otherwise; a Secret's data never reaches the store; requests are counted."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from canaryd.cache.backoff import Backoff
from canaryd.cache.informer import Informers
from canaryd.cache.slim import config_checksum, data_loaded
from canaryd.cache.store import Store
from canaryd.kube import resources as r
from canaryd.kube.client import KubeClient
from canaryd.kube.config import load_kubeconfig
from canaryd.kube.conflicts import update_status_with_retry
from canaryd.kube.errors import NotFound
from canaryd.kube.resources import CANARY, CONFIGMAP, NAMESPACE, SECRET, WATCHED, Resource
from canaryd.model.parse import parse_canary
from canaryd.model.spec import CanarySpec
from canaryd.runtime.config_data import ConfigData
from e2e.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e


async def until(cond: Callable[[], bool], within: float, what: str) -> None:
    """Poll ``cond`` until true; fail naming ``what`` after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await KubeClient.from_config(bed.kubeconfig, user_agent="e2e-informers-admin")
    yield client
    await client.close()


Factory = Callable[..., Awaitable[tuple[Informers, Store, KubeClient]]]


@pytest.fixture
async def start_informers(bed: Any) -> AsyncIterator[Factory]:
    """Start informers (with a fast reconnect backoff), optionally through a cuttable proxy."""
    started: list[tuple[Informers, KubeClient]] = []
    proxies: list[TcpProxy] = []

    async def start(
        resources: tuple[Resource, ...],
        namespace: str | None,
        *,
        proxy: TcpProxy | None = None,
        watch_timeout: int = 300,
        user_agent: str = "e2e-informers",
        metadata_only: frozenset[str] = frozenset(),
    ) -> tuple[Informers, Store, KubeClient]:
        config = await load_kubeconfig(bed.kubeconfig)
        if proxy is not None:
            url = urlsplit(config.base_url)
            proxy.host, proxy.port = url.hostname or "127.0.0.1", url.port or 443
            await proxy.start()
            proxies.append(proxy)
            config.base_url = f"https://127.0.0.1:{proxy.listen_port}"
        client = KubeClient(config, user_agent=user_agent)
        store = Store()
        informers = Informers(client, store, resources, namespace, watch_timeout=watch_timeout,
                              healthy_after=5.0, backoff=lambda: Backoff(initial=0.05, cap=0.5),
                              metadata_only=metadata_only)
        started.append((informers, client))
        await informers.start()
        await informers.wait_synced(timeout=30)
        return informers, store, client

    yield start
    for informers, client in started:
        await informers.stop()
        await client.close()
    for p in proxies:
        await p.close()


def names(store: Store, kind: str, namespace: str) -> set[str]:
    return {o["metadata"]["name"] for o in store.items(kind, namespace)}


def count(client: KubeClient, name: str, **labels: str) -> float:
    return client.registry.get_sample_value(name, labels) or 0.0


def configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def canary(name: str, label: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": name, "labels": {"rev": label}},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 9898},
            "analysis": {"interval": "1s", "threshold": 2, "maxWeight": 50, "stepWeight": 10},
        },
    }


async def test_list_then_watch_follows_creates_updates_deletes(
    namespace: str, admin: KubeClient, start_informers: Factory
) -> None:
    await admin.create(CONFIGMAP, namespace, configmap("before", {"k": "1"}))
    informers, store, client = await start_informers((CONFIGMAP,), namespace)
    assert names(store, "ConfigMap", namespace) >= {"before"}
    assert store.get("ConfigMap", namespace, "before")["checksum"] == config_checksum({"k": "1"})  # type: ignore[index]
    changes: list[tuple[str, str, str]] = []
    store.subscribe(lambda *key: changes.append(key))

    await admin.create(CONFIGMAP, namespace, configmap("after", {"k": "a"}))
    await until(lambda: "after" in names(store, "ConfigMap", namespace), 10, "ADDED after")
    await admin.patch(CONFIGMAP, namespace, "before", {"data": {"k": "2"}})
    await until(lambda: (store.get("ConfigMap", namespace, "before") or {}).get("checksum")
                == config_checksum({"k": "2"}), 10, "MODIFIED before")
    await admin.delete(CONFIGMAP, namespace, "after")
    await until(lambda: "after" not in names(store, "ConfigMap", namespace), 10, "DELETED after")

    assert ("ConfigMap", namespace, "after") in changes and ("ConfigMap", namespace, "before") in changes
    assert informers["ConfigMap"].lists == 1
    assert count(client, "canaryd_api_requests_total", verb="list", resource="configmaps", code="200") == 1
    assert count(client, "canaryd_api_requests_total", verb="watch", resource="configmaps", code="200") >= 1
    # reads come from the cache: the informer sent no GET at all
    assert count(client, "canaryd_api_requests_total", verb="get", resource="configmaps", code="200") == 0
    assert informers.counts()["ConfigMap"] == len(store.items("ConfigMap"))


async def test_default_informers_all_sync_cluster_wide(start_informers: Factory) -> None:
    informers, store, _ = await start_informers(WATCHED, None)
    assert informers.synced
    assert set(informers.counts()) == {res.kind for res in WATCHED}
    assert store.count("ConfigMap") > 0  # kube-root-ca.crt and friends exist in every namespace


async def test_steady_state_sends_no_get_or_list_per_the_audit_log(
    bed: Any, namespace: str, admin: KubeClient, start_informers: Factory
) -> None:
    """After the initial lists, the informers only watch, however much changes (the API server's own
    audit log is the witness, not canaryd's counters)."""
    if not hasattr(bed, "audit_events"):
        pytest.fail("this test reads the bed's audit log; run it on the local bed")
    agent = f"e2e-informers-{uuid.uuid4().hex[:8]}"
    _, store, _ = await start_informers(WATCHED, namespace, user_agent=agent)
    for i in range(5):
        await admin.create(CONFIGMAP, namespace, configmap(f"c{i}", {"i": str(i)}))
        await admin.create(CANARY, namespace, canary(f"k{i}"))
    for i in range(5):
        await admin.patch(CONFIGMAP, namespace, f"c{i}", {"data": {"i": "changed"}})
        await admin.delete(CANARY, namespace, f"k{i}")
    await until(lambda: not store.items("Canary", namespace) and all(
        o["checksum"] == config_checksum({"i": "changed"}) for o in store.items("ConfigMap", namespace)
        if o["metadata"]["name"].startswith("c")) and len(store.items("ConfigMap", namespace)) >= 5,
        15, "the cache to follow 20 changes")
    events = bed.audit_events(user_agent_prefix=agent, stage=None)
    requests = {e.raw.get("auditID"): e for e in events}
    verbs = sorted({e.verb for e in requests.values()})
    assert verbs == ["list", "watch"], verbs
    lists = sorted(e.resource for e in requests.values() if e.verb == "list")
    assert lists == sorted(res.plural for res in WATCHED)  # one list per kind, at start


async def test_secret_data_never_reaches_the_store(
    namespace: str, admin: KubeClient, start_informers: Factory
) -> None:
    sentinel = f"sentinel-{uuid.uuid4().hex}"
    encoded = base64.b64encode(sentinel.encode()).decode()
    _, store, _ = await start_informers((SECRET,), namespace)
    body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": "creds"},
            "stringData": {"password": sentinel}}
    await admin.create(SECRET, namespace, body)
    await until(lambda: store.get("Secret", namespace, "creds") is not None, 10, "secret cached")
    served = await admin.get(SECRET, namespace, "creds")
    assert served["data"]["password"] == encoded  # the server really holds it
    await admin.patch(SECRET, namespace, "creds", {"metadata": {"labels": {"touched": "yes"}}})
    await until(lambda: (store.get("Secret", namespace, "creds") or {}).get("metadata", {})
                .get("labels", {}).get("touched") == "yes", 10, "secret update cached")
    cached = store.get("Secret", namespace, "creds")
    assert cached is not None
    assert cached["checksum"] == config_checksum(served["data"]) and cached["type"] == "Opaque"
    everything = repr(store.items("Secret")) + repr(store.items("Secret", namespace))
    assert sentinel not in everything and encoded not in everything
    assert "data" not in cached and "stringData" not in cached


async def test_metadata_only_secrets_are_read_one_by_one_when_a_canary_needs_them(
    namespace: str, admin: KubeClient, start_informers: Factory
) -> None:
    """Secrets watched as metadata alone (as canaryd's runtime watches them): the real API server sends no
    data; the Secret a Canary's target uses is read once (one GET) and cached with its checksum, and kept
    through a relist at the same version; a change of its data puts its metadata alone back (read again
    by the next pass); a Secret nobody references is never read."""
    sentinel = f"sentinel-{uuid.uuid4().hex}"
    for name in ("used", "helm-release"):
        await admin.create(SECRET, namespace, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                               "metadata": {"name": name}, "stringData": {"k": sentinel}})
    page: list[dict[str, Any]] = []
    async for items, _ in admin.list_pages(SECRET, namespace, metadata_only=True):
        page += items
    assert {o.get("kind") for o in page} == {"PartialObjectMetadata"} and all("data" not in o for o in page)

    informers, store, client = await start_informers((SECRET,), namespace, metadata_only=r.METADATA_ONLY)
    assert {o["metadata"]["name"] for o in store.items("Secret", namespace)} == {"used", "helm-release"}
    assert not any(data_loaded(o) for o in store.items("Secret", namespace))
    woken: list[str] = []
    store.subscribe(lambda kind, ns, name: woken.append(name))
    target = podinfo_with_secret(namespace, "used")
    store.upsert("Deployment", target)  # what the Deployment informer would hold
    spec = parse_canary({**canary("podinfo"), "metadata": {"name": "podinfo", "namespace": namespace}})
    assert isinstance(spec, CanarySpec)
    data = ConfigData(client, store, logging.getLogger("e2e"))

    assert data.unloaded(spec, config_tracking=True) == [f"Secret {namespace}/used"]
    await until(lambda: data_loaded(store.get("Secret", namespace, "used") or {}), 10, "the Secret read")
    served = await admin.get(SECRET, namespace, "used")
    assert (store.get("Secret", namespace, "used") or {})["checksum"] == config_checksum(served["data"])
    assert "used" in woken and data.unloaded(spec, config_tracking=True) == []
    assert count(client, "canaryd_api_requests_total", verb="get", resource="secrets", code="200") == 1
    assert not data_loaded(store.get("Secret", namespace, "helm-release") or {})
    assert sentinel not in repr(store.items("Secret", namespace))

    inf = informers["Secret"]
    lists = inf.lists
    inf.restart(None)  # a relist at the same version keeps what was read
    await until(lambda: inf.lists > lists, 10, "the relist")
    assert data_loaded(store.get("Secret", namespace, "used") or {})

    await admin.patch(SECRET, namespace, "used", {"stringData": {"k": "changed"}})
    rv = (await admin.get(SECRET, namespace, "used"))["metadata"]["resourceVersion"]
    await until(lambda: (store.get("Secret", namespace, "used") or {})["metadata"]["resourceVersion"] == rv,
                10, "the change reported by the watch")
    assert not data_loaded(store.get("Secret", namespace, "used") or {})
    assert data.unloaded(spec, config_tracking=True) == [f"Secret {namespace}/used"]
    await until(lambda: data_loaded(store.get("Secret", namespace, "used") or {}), 10, "the second read")
    served = await admin.get(SECRET, namespace, "used")
    assert (store.get("Secret", namespace, "used") or {})["checksum"] == config_checksum(served["data"])
    assert count(client, "canaryd_api_requests_total", verb="get", resource="secrets", code="200") == 2
    await data.stop()


def podinfo_with_secret(namespace: str, secret: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "podinfo", "namespace": namespace, "uid": "u", "resourceVersion": "1"},
            "spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "podinfo", "envFrom": [{"secretRef": {"name": secret}}]}]}}}}


async def test_forced_410_relists_and_drops_objects_deleted_meanwhile(
    namespace: str, admin: KubeClient, start_informers: Factory
) -> None:
    for name in ("a", "b", "c"):
        await admin.create(CANARY, namespace, canary(name))
    proxy = TcpProxy("", 0)
    informers, store, client = await start_informers((CANARY,), namespace, proxy=proxy)
    inf = informers["Canary"]
    assert names(store, "Canary", namespace) == {"a", "b", "c"}
    changes: list[str] = []
    store.subscribe(lambda kind, ns, name: changes.append(name))

    proxy.cut()  # the watch goes down and reconnects keep failing
    errors = count(client, "canaryd_watch_restarts_total", resource="canaries", reason="error")
    await until(lambda: count(client, "canaryd_watch_restarts_total", resource="canaries", reason="error")
                > errors, 10, "the informer to notice the outage")
    await admin.delete(CANARY, namespace, "b")
    await admin.patch(CANARY, namespace, "c", {"metadata": {"labels": {"rev": "v2"}}})
    await admin.create(CANARY, namespace, canary("d"))
    assert names(store, "Canary", namespace) == {"a", "b", "c"}  # nothing seen while cut

    # resume from a resourceVersion the API server no longer serves: a genuine 410 Gone
    inf.restart(resource_version="1")
    proxy.resume()
    await until(lambda: inf.lists == 2, 20, "a relist after 410")
    assert count(client, "canaryd_watch_restarts_total", resource="canaries", reason="gone") >= 1
    assert names(store, "Canary", namespace) == {"a", "c", "d"}
    assert store.get("Canary", namespace, "c")["metadata"]["labels"]["rev"] == "v2"  # type: ignore[index]
    assert {"b", "c", "d"} <= set(changes) and "a" not in changes  # told of each removed/changed key

    # and the watch carries on after the relist
    await admin.delete(CANARY, namespace, "a")
    await until(lambda: names(store, "Canary", namespace) == {"c", "d"}, 10, "watch after relist")


PODTEMPLATE = Resource("", "v1", "podtemplates", "PodTemplate")


def podtemplate(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name},
            "template": {"metadata": {"labels": {"a": "b"}},
                         "spec": {"containers": [{"name": "c", "image": "x"}]}}}


async def test_outage_past_etcd_compaction_leads_to_410_and_relist(
    bed: Any, namespace: str, admin: KubeClient, start_informers: Factory
) -> None:
    """The informer's own resourceVersion is compacted away while it is disconnected (the bed keeps no
    watch cache for PodTemplates, so the resumed watch reaches etcd): 410 on reconnect, relist, and the
    objects deleted during the outage are gone from the cache."""
    if not hasattr(bed, "compact_etcd"):
        pytest.fail("this test compacts the bed's etcd; run it on the local bed")
    for name in ("a", "b"):
        await admin.create(PODTEMPLATE, namespace, podtemplate(name))
    proxy = TcpProxy("", 0)
    informers, store, client = await start_informers((PODTEMPLATE,), namespace, proxy=proxy)
    inf = informers["PodTemplate"]
    assert names(store, "PodTemplate", namespace) == {"a", "b"}
    resume_rv = inf.resource_version
    proxy.cut()
    await until(lambda: count(client, "canaryd_watch_restarts_total", resource="podtemplates", reason="error")
                >= 1, 10, "the informer to notice the outage")
    await admin.delete(PODTEMPLATE, namespace, "b")
    await admin.create(PODTEMPLATE, namespace, podtemplate("c"))
    assert int(bed.compact_etcd()) > int(resume_rv or 0)
    assert inf.resource_version == resume_rv  # it will resume from a compacted version
    proxy.resume()
    await until(lambda: inf.lists == 2, 20, "a relist after 410")
    assert count(client, "canaryd_watch_restarts_total", resource="podtemplates", reason="gone") >= 1
    assert names(store, "PodTemplate", namespace) == {"a", "c"}


async def test_reconnect_after_outage_catches_up(
    namespace: str, admin: KubeClient, start_informers: Factory
) -> None:
    for name in ("keep", "drop"):
        await admin.create(CONFIGMAP, namespace, configmap(name, {"v": "1"}))
    proxy = TcpProxy("", 0)
    _, store, client = await start_informers((CONFIGMAP,), namespace, proxy=proxy)
    proxy.cut()
    await until(lambda: count(client, "canaryd_watch_restarts_total", resource="configmaps", reason="error")
                >= 2, 10, "reconnect attempts during the outage")
    await admin.delete(CONFIGMAP, namespace, "drop")
    await admin.patch(CONFIGMAP, namespace, "keep", {"data": {"v": "2"}})
    await admin.create(CONFIGMAP, namespace, configmap("new", {"v": "1"}))
    proxy.resume()
    await until(lambda: {"keep", "new"} <= names(store, "ConfigMap", namespace)
                and "drop" not in names(store, "ConfigMap", namespace)
                and store.get("ConfigMap", namespace, "keep")["checksum"]  # type: ignore[index]
                == config_checksum({"v": "2"}), 20, "catch-up after the outage")
    items, _ = await admin.list(CONFIGMAP, namespace)
    assert names(store, "ConfigMap", namespace) == {o["metadata"]["name"] for o in items}


async def test_watch_survives_a_bookmark(namespace: str, admin: KubeClient, start_informers: Factory) -> None:
    """The server sends a BOOKMARK shortly before a watch's timeout when the resource's version moved on;
    writes in another namespace move it without sending this namespace's watch any event."""
    other = f"{namespace}-other"
    await admin.create(NAMESPACE, None, {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": other}})
    try:
        await admin.create(CONFIGMAP, namespace, configmap("watched", {"v": "1"}))
        informers, store, client = await start_informers((CONFIGMAP,), namespace, watch_timeout=4)
        inf = informers["ConfigMap"]
        synced_at = int(inf.resource_version or 0)
        await admin.create(CONFIGMAP, other, configmap("noise", {"n": "0"}))
        noise_rv = 0
        async with asyncio.timeout(30):  # keep the version moving until a bookmark arrives
            while inf.bookmarks == 0:
                noise = await admin.patch(CONFIGMAP, other, "noise", {"data": {"n": str(noise_rv)}})
                noise_rv = int(noise["metadata"]["resourceVersion"])
                with contextlib.suppress(AssertionError):
                    await until(lambda: inf.bookmarks > 0, 0.5, "a bookmark")
        assert inf.events == 0  # nothing happened in the watched namespace...
        assert int(inf.resource_version or 0) > synced_at  # ...yet the informer's version moved on
        await admin.patch(CONFIGMAP, namespace, "watched", {"data": {"v": "2"}})
        await until(lambda: (store.get("ConfigMap", namespace, "watched") or {}).get("checksum")
                    == config_checksum({"v": "2"}), 15, "an update after the bookmark")
        assert names(store, "ConfigMap", namespace) >= {"watched"}
        assert "noise" not in names(store, "ConfigMap", other)
        assert count(client, "canaryd_watch_restarts_total", resource="configmaps", reason="gone") == 0
    finally:
        with contextlib.suppress(NotFound):
            await admin.delete(NAMESPACE, None, other)


async def test_status_conflict_is_retried_on_fresh_data(
    namespace: str, admin: KubeClient, start_informers: Factory
) -> None:
    await admin.create(CANARY, namespace, canary("podinfo"))
    _, store, client = await start_informers((CANARY,), namespace)
    stale = store.get("Canary", namespace, "podinfo")
    assert stale is not None
    # someone else writes status after our cache copy was taken: our copy's resourceVersion is stale
    fresh = await admin.get(CANARY, namespace, "podinfo")
    fresh["status"] = {"phase": "Initialized", "failedChecks": 1}
    await admin.replace(CANARY, namespace, "podinfo", fresh, subresource="status")

    seen: list[dict[str, Any]] = []

    def mutate(obj: dict[str, Any]) -> dict[str, Any]:
        seen.append(dict(obj.get("status") or {}))
        obj.setdefault("status", {})["canaryWeight"] = 10
        return obj

    gets_before = count(client, "canaryd_api_requests_total", verb="get", resource="canaries", code="200")
    result = await update_status_with_retry(client, CANARY, namespace, "podinfo", mutate, current=stale)
    assert result["status"]["canaryWeight"] == 10
    assert result["status"]["failedChecks"] == 1  # the other writer's change was kept: fresh data
    assert len(seen) == 2 and "failedChecks" not in seen[0] and seen[1]["failedChecks"] == 1
    assert count(client, "canaryd_api_requests_total", verb="update", resource="canaries/status",
                 code="409") == 1
    assert count(client, "canaryd_api_requests_total", verb="get", resource="canaries",
                 code="200") == gets_before + 1

    # with an up-to-date cached copy the write needs no GET at all
    await until(lambda: (store.get("Canary", namespace, "podinfo") or {}).get("metadata", {})
                .get("resourceVersion") == result["metadata"]["resourceVersion"], 10, "cache caught up")
    gets = count(client, "canaryd_api_requests_total", verb="get", resource="canaries", code="200")

    def bump(obj: dict[str, Any]) -> dict[str, Any]:
        obj["status"]["canaryWeight"] = 20
        return obj

    again = await update_status_with_retry(client, CANARY, namespace, "podinfo", bump,
                                           current=store.get("Canary", namespace, "podinfo"))
    assert again["status"]["canaryWeight"] == 20
    assert count(client, "canaryd_api_requests_total", verb="get", resource="canaries", code="200") == gets
    # and "nothing to write" sends nothing
    unchanged = await update_status_with_retry(client, CANARY, namespace, "podinfo", lambda obj: None,
                                               current=again)
    assert unchanged is again
