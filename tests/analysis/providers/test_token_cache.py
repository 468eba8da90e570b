"""Short-lived provider credentials are exchanged once and kept until shortly before they expire
(:mod:`canaryd.analysis.providers.tokens`): the loopback token endpoints count the exchanges over
several queries, and a clock moved to within the renewal margin makes the next query exchange again
before the old token has expired."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from canaryd.analysis.providers import PROVIDERS, ProviderSettings
from canaryd.analysis.providers.tokens import MARGIN, Expiring, TokenCache
from canaryd.model.providers import parse_metric_template

from .fakes import CloudWatchFake, GoogleFake, MetadataFake, StsFake

NOW = 1_704_067_800.0  # 2024-01-01T00:10:00Z
CW_QUERY = '[{"Id": "e1", "Expression": "SUM(METRICS())"}]'
CW = parse_metric_template({"spec": {"provider": {"type": "cloudwatch", "region": "eu-west-1"},
                                     "query": CW_QUERY}})


def gcp(address: str) -> Any:
    return parse_metric_template({"spec": {"provider": {"type": "stackdriver", "secretRef": {"name": "gcp"},
                                                        "address": address}, "query": "fetch x"}})


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Clock:
    def __init__(self) -> None:
        self.t = NOW

    def __call__(self) -> float:
        return self.t


def settings(tokens: TokenCache, clock: Clock, env: dict[str, str] | None = None) -> ProviderSettings:
    return ProviderSettings(timeout=5, now=clock, environ=env or {}, tokens=tokens)


@pytest.fixture
async def google() -> AsyncIterator[GoogleFake]:
    fake = GoogleFake()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def aws() -> AsyncIterator[tuple[CloudWatchFake, StsFake, MetadataFake]]:
    cw, sts, md = CloudWatchFake(), StsFake(), MetadataFake()
    for fake in (cw, sts, md):
        await fake.start()
    yield cw, sts, md
    for fake in (cw, sts, md):
        await fake.stop()


def count(fake: Any, path: str, method: str = "") -> int:
    return sum(1 for s in fake.seen if s.path == path and (not method or s.method == method))


async def test_a_service_account_token_is_exchanged_once_and_renewed_before_expiry(
        google: GoogleFake, session: aiohttp.ClientSession) -> None:
    """Google's token endpoint answers ``expires_in: 3599``: five queries, one exchange; at 3000 s the
    token is still used; within the margin (5 min before expiry) the next query exchanges again."""
    tokens, clock, t = TokenCache(), Clock(), gcp(google.url)
    secrets = {"project": google.project, "serviceAccountKey": google.key_file()}
    for _ in range(5):
        assert await PROVIDERS["stackdriver"].query(session, t, "fetch x", secrets,
                                                    settings(tokens, clock)) == 0.93
    assert count(google, "/token") == 1
    assert count(google, f"/v3/projects/{google.project}/timeSeries:query") == 5
    clock.t = NOW + 3000
    await PROVIDERS["stackdriver"].query(session, t, "fetch x", secrets, settings(tokens, clock))
    assert count(google, "/token") == 1
    clock.t = NOW + 3599 - MARGIN + 1  # not expired yet, but within the margin
    await PROVIDERS["stackdriver"].query(session, t, "fetch x", secrets, settings(tokens, clock))
    assert count(google, "/token") == 2 and google.assertions[-1]["iat"] == int(clock.t)
    google.client_email = "other@my-project.iam.gserviceaccount.com"  # a rotated key: a new exchange
    rotated = {**secrets, "serviceAccountKey": google.key_file()}
    await PROVIDERS["stackdriver"].query(session, t, "fetch x", rotated, settings(tokens, clock))
    assert count(google, "/token") == 3


async def test_a_metadata_server_token_is_kept(google: GoogleFake, session: aiohttp.ClientSession) -> None:
    tokens, clock = TokenCache(), Clock()
    env = {"GCE_METADATA_HOST": google.url.removeprefix("http://"),
           "CANARYD_CLOUD_MONITORING_ENDPOINT": google.url}
    for _ in range(3):
        await PROVIDERS["stackdriver"].query(session, gcp(""), "fetch x", {"project": google.project},
                                             settings(tokens, clock, env))
    assert count(google, "/computeMetadata/v1/instance/service-accounts/default/token") == 1


async def test_irsa_credentials_are_exchanged_once_and_renewed_before_expiry(
        aws: tuple[CloudWatchFake, StsFake, MetadataFake], session: aiohttp.ClientSession,
        tmp_path: Path) -> None:
    cw, sts, _ = aws
    cw.access_key, cw.secret_key = sts.creds[0], sts.creds[1]
    sts.expiration = iso(NOW + 3600)
    token_file = tmp_path / "token"
    token_file.write_text(sts.web_token)
    env = {"AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file), "AWS_ROLE_ARN": sts.role,
           "AWS_ENDPOINT_URL_STS": sts.url, "AWS_ENDPOINT_URL_CLOUDWATCH": cw.url,
           "AWS_EC2_METADATA_DISABLED": "true"}
    tokens, clock = TokenCache(), Clock()
    for _ in range(4):
        assert await PROVIDERS["cloudwatch"].query(session, CW, CW_QUERY, {}, settings(tokens, clock, env)) \
            == 0.0421
    assert len(sts.seen) == 1 and len(cw.seen) == 4
    clock.t = NOW + 3600 - MARGIN + 1
    sts.creds = ("ASIASECOND", "second-secret-KEY", "second-session-TOKEN")
    cw.access_key, cw.secret_key = sts.creds[0], sts.creds[1]
    await PROVIDERS["cloudwatch"].query(session, CW, CW_QUERY, {}, settings(tokens, clock, env))
    assert len(sts.seen) == 2 and cw.seen[-1].headers["X-Amz-Security-Token"] == "second-session-TOKEN"


async def test_imds_session_token_and_credentials_are_kept_for_their_lifetimes(
        aws: tuple[CloudWatchFake, StsFake, MetadataFake], session: aiohttp.ClientSession) -> None:
    """Credentials valid 15 minutes are renewed after 10; the IMDSv2 session token (6 hours) is not."""
    cw, _, md = aws
    cw.access_key, cw.secret_key = md.creds[0], md.creds[1]
    md.expiration = iso(NOW + 900)
    env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": md.url, "AWS_ENDPOINT_URL_CLOUDWATCH": cw.url,
           "HOME": "/nonexistent"}
    tokens, clock = TokenCache(), Clock()
    for _ in range(3):
        await PROVIDERS["cloudwatch"].query(session, CW, CW_QUERY, {}, settings(tokens, clock, env))
    role_path = f"/latest/meta-data/iam/security-credentials/{md.role}"
    assert (count(md, "/latest/api/token", "PUT"), count(md, role_path)) == (1, 1)
    clock.t = NOW + 900 - MARGIN + 1
    await PROVIDERS["cloudwatch"].query(session, CW, CW_QUERY, {}, settings(tokens, clock, env))
    assert (count(md, "/latest/api/token", "PUT"), count(md, role_path)) == (1, 2)


async def test_container_credentials_are_kept(aws: tuple[CloudWatchFake, StsFake, MetadataFake],
                                              session: aiohttp.ClientSession) -> None:
    cw, _, md = aws
    cw.access_key, cw.secret_key = md.creds[0], md.creds[1]
    env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": md.url + "/v1/credentials",
           "AWS_CONTAINER_AUTHORIZATION_TOKEN": md.container_token, "AWS_ENDPOINT_URL_CLOUDWATCH": cw.url,
           "HOME": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"}
    tokens, clock = TokenCache(), Clock()
    for _ in range(3):
        await PROVIDERS["cloudwatch"].query(session, CW, CW_QUERY, {}, settings(tokens, clock, env))
    assert count(md, "/v1/credentials") == 1


@pytest.mark.parametrize(("lifetime", "kept_until"), [
    (3600.0, 3600.0 - MARGIN),  # renewed MARGIN seconds before expiry
    (60.0, 30.0),  # a short-lived token: renewed after half its lifetime
    (None, 0.0),  # no expiry given: never kept
    (-5.0, 0.0),  # already expired: never kept
])
async def test_renewal_times(lifetime: float | None, kept_until: float) -> None:
    tokens, fetched = TokenCache(), []

    async def fetch() -> Expiring[str]:
        fetched.append(1)
        return Expiring(f"t{len(fetched)}", None if lifetime is None else 1000.0 + lifetime)

    assert await tokens.get("k", 1000.0, fetch) == "t1"
    if kept_until:
        assert await tokens.get("k", 1000.0 + kept_until - 0.001, fetch) == "t1"
    assert await tokens.get("k", 1000.0 + kept_until, fetch) == "t2"


async def test_concurrent_queries_share_one_exchange() -> None:
    tokens, started = TokenCache(), asyncio.Event()
    calls = []

    async def fetch() -> Expiring[str]:
        calls.append(1)
        started.set()
        await asyncio.sleep(0)
        return Expiring("t", 5000.0)

    values = await asyncio.gather(*(tokens.get("k", 1000.0, fetch) for _ in range(10)))
    assert values == ["t"] * 10 and calls == [1] and tokens.exchanges == 1


async def test_entries_are_bounded() -> None:
    tokens = TokenCache(max_entries=3)

    async def fetch() -> Expiring[str]:
        return Expiring("t", 5000.0)

    for i in range(10):
        await tokens.get(f"k{i}", 1000.0, fetch)
    assert tokens.exchanges == 10
    await tokens.get("k9", 1000.0, fetch)
    await tokens.get("k0", 1000.0, fetch)
    assert tokens.exchanges == 11  # k9 kept, k0 dropped
