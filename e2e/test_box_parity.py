"""The box's API server (tests/box/apiserver.py) against the real one: the same request script
(tests/box/script.py: create, get, list, watch from a resourceVersion with bookmarks, merge and JSON patch
with a failing ``test``, status PUT with a stale resourceVersion, generation bumps, delete with a finalizer,
finalizer removal, a watch from a compacted resourceVersion) replayed against the bed's kube-apiserver and
the fake must get the same answers (status codes, reasons, the fields each request changed; bookmarks,
which the real API server sends only when it can, when it sent any). The box's fast tests of the runtime
are only as good as this agreement."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from e2e.bed import Bed
from tests.box.apiserver import ApiServer
from tests.box.script import BOOKMARKS, Http, run_script
from tests.box.test_apiserver import EXPECTED


async def test_the_box_answers_as_the_real_api_server(bed: Any, namespace: str) -> None:
    if not isinstance(bed, Bed):
        pytest.fail("this test compacts the bed's etcd; run it on the local bed")

    async def compact_bed() -> None:
        await asyncio.to_thread(bed.compact_etcd)

    real_http = Http(str(bed.api_url), ssl=bed.ssl_context())
    try:
        real = await run_script(real_http, namespace, compact_bed)
    finally:
        await real_http.close()

    fake = ApiServer()
    await fake.start()
    fake_http = Http(fake.url)

    async def compact_fake() -> None:
        fake.compact()

    try:
        boxed = await run_script(fake_http, namespace, compact_fake, watch_seconds=2)
    finally:
        await fake_http.close()
        await fake.stop()

    # the real API server's bookmarks are best effort: compared only when it sent some
    bookmarked = dict(next(a for a in real if a.step == BOOKMARKS).facts)["bookmarked"]
    for want, have in zip(real, boxed, strict=True):
        if want.step == BOOKMARKS and not bookmarked:
            continue
        assert have == want, f"the box differs from kube-apiserver at {want.step!r}"
    # and the unit tests' table is what the real API server says
    kept = [a for a in EXPECTED if bookmarked or a.step != BOOKMARKS]
    assert [a for a in real if bookmarked or a.step != BOOKMARKS] == kept
