"""Micro-benchmark of the watch cache (run on demand: ``python bench/bench_cache.py``).

1. Memory: 10,000 ConfigMaps of 100 KiB each go through the informer's path (list pages of 500 parsed
   with orjson, slimmed per page, put in the Store); the store's own size is measured with tracemalloc
   and the process RSS before/after, against the raw size of what the API server sent.
2. Event rate: watch lines through ``parse_event`` → slim → ``Store.upsert`` (with a subscriber that
   runs the dependents index lookup, as the runtime does), in process and end to end through a real
   informer reading a chunked watch stream from an aiohttp server on loopback."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import time
import tracemalloc
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from canaryd.cache.index import CanaryIndex, dependents
from canaryd.cache.informer import Informer
from canaryd.cache.slim import slim
from canaryd.cache.store import Store
from canaryd.kube.client import KubeClient
from canaryd.kube.config import ClusterConfig
from canaryd.kube.resources import CONFIGMAP
from canaryd.kube.watch_lines import parse_event


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def configmap(i: int, size: int, rv: int = 0) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"cm-{i:05d}", "namespace": f"ns-{i % 50}", "uid": f"uid-{i}",
            "resourceVersion": str(rv or 1000 + i), "labels": {"app": f"app-{i % 100}"},
            "managedFields": [{"manager": "kubectl", "operation": "Update",
                               "fieldsV1": {"f:data": {"f:blob": {}}}}],
        },
        "data": {"blob": (f"{i:08d}" * (size // 8 + 1))[:size]},
    }


def deployment(i: int, rv: int, namespaces: int = 50) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": f"app-{i}", "namespace": f"ns-{i % namespaces}", "resourceVersion": str(rv),
                     "uid": f"d-{i}", "labels": {"app": f"app-{i}"},
                     "managedFields": [{"manager": "kube-controller-manager"}]},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": f"app-{i}"}},
                 "template": {"metadata": {"labels": {"app": f"app-{i}"}},
                              "spec": {"containers": [{"name": "app", "image": f"img:{rv}",
                                                       "envFrom": [{"configMapRef": {"name": f"cm-{i}"}}]}],
                                       "volumes": [{"name": "c", "configMap": {"name": f"cfg-{i}"}}]}}},
        "status": {"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2, "availableReplicas": 2},
    }


def bench_memory(count: int, size: int, page: int) -> None:
    gc.collect()
    rss0 = rss_mib()
    tracemalloc.start()
    store = Store()
    raw_bytes = 0
    t0 = time.perf_counter()
    maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for start in range(0, count, page):
        body = orjson.dumps({"metadata": {"resourceVersion": "99"},
                             "items": [configmap(i, size) for i in range(start, min(count, start + page))]})
        raw_bytes += len(body)
        items = orjson.loads(body)["items"]
        del body
        for o in items:
            store.upsert("ConfigMap", slim("ConfigMap", o))
        del items
    took = time.perf_counter() - t0
    gc.collect()
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = rss_mib()
    maxrss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"memory: {count} ConfigMaps x {size // 1024} KiB = {raw_bytes / 2**20:,.0f} MiB "
          "from the API server")
    print(f"  store after slimming: {current / 2**20:.1f} MiB traced ({current / count:,.0f} B/object); "
          f"peak RSS while listing {maxrss1:.0f} MiB (+{maxrss1 - maxrss0:.0f}: one page of {page} "
          "at a time, generator included)")
    print(f"  RSS {rss0:.0f} -> {rss1:.0f} MiB; list+slim {took:.1f}s ({count / took:,.0f} objects/s, "
          f"{raw_bytes / 2**20 / took:,.0f} MiB/s)")
    assert store.count("ConfigMap") == count


def bench_events_in_process(n: int, canaries: int, namespaces: int = 50) -> None:
    store = Store()
    index = CanaryIndex(store)
    for i in range(canaries):
        store.upsert("Canary", {"metadata": {"name": f"app-{i}", "namespace": f"ns-{i % namespaces}",
                                             "uid": f"c-{i}", "resourceVersion": "1"},
                                "spec": {"targetRef": {"name": f"app-{i}"}}})
    woken = 0

    def wake(kind: str, ns: str, name: str) -> None:
        nonlocal woken
        woken += len(dependents(index, kind, ns, name))

    store.subscribe(wake)
    lines = [orjson.dumps({"type": "MODIFIED", "object": deployment(i % canaries, 2000 + i, namespaces)})
             for i in range(n)]
    t0 = time.perf_counter()
    for line in lines:
        _, obj = parse_event(line)
        store.upsert("Deployment", slim("Deployment", obj))
    took = time.perf_counter() - t0
    print(f"events in process: {n:,} Deployment MODIFIED ({len(lines[0]):,} B each) with {canaries} Canaries "
          f"in {namespaces} namespace(s) indexed: {n / took:,.0f} events/s ({took * 1e6 / n:.1f} µs/event); "
          f"{woken:,} task wake-ups")


async def bench_events_http(n: int, size: int) -> None:
    body = b"".join(
        orjson.dumps({"type": "MODIFIED",
                      "object": {**configmap(i % 1000, size, rv=5000 + i), "kind": "ConfigMap"}})
        + b"\n" for i in range(n))

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") != "1":
            return web.json_response({"metadata": {"resourceVersion": "1"}, "items": []})
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        if request.query.get("resourceVersion") == "1":
            for off in range(0, len(body), 1 << 20):
                await resp.write(body[off : off + (1 << 20)])
        else:
            await asyncio.sleep(3600)
        return resp

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    client = KubeClient(ClusterConfig(base_url=url, ssl_context=None))
    store = Store()
    done = asyncio.Event()
    seen = 0

    def on_change(kind: str, ns: str, name: str) -> None:
        nonlocal seen
        seen += 1
        if seen >= n:
            done.set()

    store.subscribe(on_change)
    restarts = Counter("bench_restarts", "", ["resource", "reason"], registry=CollectorRegistry())
    inf = Informer(client, store, CONFIGMAP, restarts=restarts)
    t0 = time.perf_counter()
    inf.start()
    await asyncio.wait_for(done.wait(), 300)
    took = time.perf_counter() - t0
    await inf.stop()
    await client.close()
    await runner.cleanup()
    print(f"events over HTTP: {n:,} ConfigMap MODIFIED of {size // 1024} KiB "
          f"({len(body) / 2**20:,.0f} MiB stream) through a real informer: {n / took:,.0f} events/s, "
          f"{len(body) / 2**20 / took:,.0f} MiB/s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=10_000)
    p.add_argument("--size-kib", type=int, default=100)
    p.add_argument("--events", type=int, default=100_000)
    args = p.parse_args()
    bench_memory(args.count, args.size_kib * 1024, page=500)
    bench_events_in_process(args.events, canaries=500)
    bench_events_in_process(args.events, canaries=1000, namespaces=1)  # the scale benchmark's shape
    asyncio.run(bench_events_http(args.events // 10, args.size_kib * 1024))


if __name__ == "__main__":
    main()
