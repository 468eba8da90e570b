"""CloudWatch's credentials: the AWS default chain links beyond the environment, each against a
loopback fake of its documented endpoint, and the signed GetMetricData call made with what it gave
(the CloudWatch fake verifies the signature with the credentials the chain handed out)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from canaryd.analysis.providers import PROVIDERS, ProviderError, ProviderSettings
from canaryd.model.providers import parse_metric_template

from .fakes import CloudWatchFake, MetadataFake, StsFake

QUERY = '[{"Id": "e1", "Expression": "SUM(METRICS())"}]'
TEMPLATE = parse_metric_template({"spec": {"provider": {"type": "cloudwatch", "region": "eu-west-1"},
                                           "query": QUERY}})


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[CloudWatchFake, StsFake, MetadataFake]]:
    cw, sts, md = CloudWatchFake(), StsFake(), MetadataFake()
    for fake in (cw, sts, md):
        await fake.start()
    yield cw, sts, md
    for fake in (cw, sts, md):
        await fake.stop()


async def ask(session: aiohttp.ClientSession, env: dict[str, str]) -> float:
    settings = ProviderSettings(interval_seconds=60, timeout=5, environ=env, now=lambda: 1_704_067_800.0)
    return await PROVIDERS["cloudwatch"].query(session, TEMPLATE, QUERY, {}, settings)


async def test_irsa_web_identity_through_sts(fakes: tuple[CloudWatchFake, StsFake, MetadataFake],
                                             session: aiohttp.ClientSession, tmp_path: Path) -> None:
    """https://docs.aws.amazon.com/eks/latest/userguide/iam-roles-for-service-accounts.html: the
    projected token file and role ARN in the environment; STS answers temporary credentials."""
    cw, sts, _ = fakes
    cw.access_key, cw.secret_key = sts.creds[0], sts.creds[1]
    token_file = tmp_path / "token"
    token_file.write_text(sts.web_token)
    env = {"AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file), "AWS_ROLE_ARN": sts.role,
           "AWS_ENDPOINT_URL_STS": sts.url, "AWS_ENDPOINT_URL_CLOUDWATCH": cw.url,
           "AWS_EC2_METADATA_DISABLED": "true"}
    assert await ask(session, env) == 0.0421
    assert cw.seen[-1].headers["X-Amz-Security-Token"] == sts.creds[2]
    token_file.write_text("a-token-for-another-audience")
    with pytest.raises(ProviderError) as e:
        await ask(session, env)
    assert "InvalidIdentityToken" in str(e.value) and "a-token-for-another-audience" not in str(e.value)


async def test_imdsv2_instance_role(fakes: tuple[CloudWatchFake, StsFake, MetadataFake],
                                    session: aiohttp.ClientSession) -> None:
    """IMDSv2: PUT /latest/api/token, then the role's credentials with the session token."""
    cw, _, md = fakes
    cw.access_key, cw.secret_key = md.creds[0], md.creds[1]
    env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": md.url, "AWS_ENDPOINT_URL_CLOUDWATCH": cw.url,
           "HOME": "/nonexistent"}
    assert await ask(session, env) == 0.0421
    assert [(s.method, s.path) for s in md.seen] == [
        ("PUT", "/latest/api/token"), ("GET", "/latest/meta-data/iam/security-credentials/"),
        ("GET", f"/latest/meta-data/iam/security-credentials/{md.role}")]
    assert cw.seen[-1].headers["X-Amz-Security-Token"] == md.creds[2]


async def test_eks_pod_identity_container_endpoint(fakes: tuple[CloudWatchFake, StsFake, MetadataFake],
                                                   session: aiohttp.ClientSession, tmp_path: Path) -> None:
    """https://docs.aws.amazon.com/eks/latest/userguide/pod-identities.html: the agent's full URI and
    the authorization token file in the environment."""
    cw, _, md = fakes
    cw.access_key, cw.secret_key = md.creds[0], md.creds[1]
    token_file = tmp_path / "eks-pod-identity-token"
    token_file.write_text(md.container_token)
    env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": md.url + "/v1/credentials",
           "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file), "AWS_ENDPOINT_URL_CLOUDWATCH": cw.url,
           "HOME": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"}
    assert await ask(session, env) == 0.0421
    assert md.seen[-1].headers["Authorization"] == md.container_token


async def test_no_credentials_anywhere(session: aiohttp.ClientSession, tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    with pytest.raises(ProviderError, match="NoCredentialProviders"):
        await ask(session, env)
