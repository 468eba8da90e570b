"""The AWS SDK's default credentials chain, configured by canaryd's own environment (never by a
template), in the AWS SDK for Go v1's order (Flagger's CloudWatch provider has no secretRef; it uses this
chain): environment variables, IRSA web identity (STS ``AssumeRoleWithWebIdentity``), the shared
credentials file, the container endpoint (EKS Pod Identity, ECS), then EC2 instance metadata (IMDSv2).
Temporary credentials (and the IMDSv2 session token) are kept in the process's
:class:`~canaryd.analysis.providers.tokens.TokenCache` until shortly before their ``Expiration``
(docs/providers.md)."""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import aiohttp
import orjson
from yarl import URL

from canaryd.analysis.providers.protocol import ProviderError
from canaryd.analysis.providers.request import request
from canaryd.analysis.providers.sigv4 import Credentials
from canaryd.analysis.providers.tokens import Expiring, TokenCache, digest

IMDS = "http://169.254.169.254"
IMDS_TIMEOUT = 1.0  # seconds per instance-metadata request, as the SDKs bound it
IMDS_SESSION_TTL = 21600  # seconds an IMDSv2 session token is asked for (and kept, less the margin)
LIMIT = 64 * 1024  # bytes of a credentials answer


def from_environment(env: Mapping[str, str]) -> Credentials | None:
    key = env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_ACCESS_KEY") or ""
    secret = env.get("AWS_SECRET_ACCESS_KEY") or env.get("AWS_SECRET_KEY") or ""
    if not key or not secret:
        return None
    return Credentials(key, secret, env.get("AWS_SESSION_TOKEN", ""), "environment")


def from_shared_file(env: Mapping[str, str]) -> Credentials | None:
    path = env.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.join(env.get("HOME", "/nonexistent"),
                                                                  ".aws", "credentials")
    profile = env.get("AWS_PROFILE") or "default"
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_string(f.read(64 * 1024))
    except (OSError, configparser.Error, UnicodeDecodeError):
        return None
    if not parser.has_section(profile):
        return None
    section = parser[profile]
    key, secret = section.get("aws_access_key_id", ""), section.get("aws_secret_access_key", "")
    if not key or not secret:
        return None
    return Credentials(key.strip(), secret.strip(), section.get("aws_session_token", "").strip(),
                       "shared credentials file")


def _file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(64 * 1024).strip()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.__class__.__name__
        raise ProviderError(f"error requesting cloudwatch: cannot read {path}: {reason}") from None


def _temporary(doc: Any, source: str) -> Expiring[Credentials]:
    """Temporary credentials and their ``Expiration`` (ISO 8601; without one they are not kept)."""
    if not isinstance(doc, dict) or not doc.get("AccessKeyId") or not doc.get("SecretAccessKey"):
        raise ProviderError(f"error requesting cloudwatch: {source} sent no credentials")
    creds = Credentials(str(doc["AccessKeyId"]), str(doc["SecretAccessKey"]), str(doc.get("Token") or ""),
                        source)
    return Expiring(creds, _expiry(doc.get("Expiration")))


def _expiry(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(text).strip()).timestamp() if text else None
    except ValueError:
        return None


async def from_web_identity(session: aiohttp.ClientSession, env: Mapping[str, str], region: str,
                            seconds: float, tokens: TokenCache, now: float) -> Credentials | None:
    """IRSA: the projected service-account token exchanged at STS (``AssumeRoleWithWebIdentity``, an
    unsigned call) for the role's temporary credentials, kept until shortly before they expire."""
    token_file, role = env.get("AWS_WEB_IDENTITY_TOKEN_FILE", ""), env.get("AWS_ROLE_ARN", "")
    if not token_file or not role:
        return None
    token = _file(token_file)  # read each time: the kubelet rotates it (a new token is a new exchange)
    base = env.get("AWS_ENDPOINT_URL_STS") or env.get("AWS_ENDPOINT_URL") or f"https://sts.{region}.amazonaws.com"
    params = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": role,
              "RoleSessionName": env.get("AWS_ROLE_SESSION_NAME") or "canaryd", "WebIdentityToken": token}

    async def exchange() -> Expiring[Credentials]:
        body = await request(session, "STS", "POST", URL(base.rstrip("/") + "/"), headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "Accept": "application/xml"},
            data=urlencode(params).encode(), secrets=(token,),
            timeout=seconds, limit=LIMIT)
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            raise ProviderError("error requesting cloudwatch: STS sent an unreadable answer") from None
        found = {el.tag.rsplit("}", 1)[-1]: (el.text or "") for el in root.iter()}
        keys = {"AccessKeyId": "AccessKeyId", "SecretAccessKey": "SecretAccessKey", "Token": "SessionToken",
                "Expiration": "Expiration"}
        return _temporary({ours: found.get(theirs) for ours, theirs in keys.items()}, "web identity (STS)")

    return await tokens.get(digest("sts", base, *params.values()), now, exchange)


async def from_container(session: aiohttp.ClientSession, env: Mapping[str, str],
                         seconds: float, tokens: TokenCache, now: float) -> Credentials | None:
    """EKS Pod Identity and ECS: ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` with the authorization token
    (``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`` or ``AWS_CONTAINER_AUTHORIZATION_TOKEN``)."""
    full = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
    relative = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "")
    if not full and not relative:
        return None
    url = URL(full or "http://169.254.170.2" + relative)
    token_file = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "")
    token = _file(token_file) if token_file else env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN", "")
    headers = {"Authorization": token} if token else {}

    async def fetch() -> Expiring[Credentials]:
        body = await request(session, "container credentials", "GET", url, headers=headers, secrets=(token,),
                             timeout=seconds, limit=LIMIT)
        return _temporary(_json(body, "container credentials"), "container credentials")

    return await tokens.get(digest("container", str(url), token), now, fetch)


class _NoInstanceMetadata(Exception):
    """Not on EC2 (or IMDS unreachable, or no instance role): the chain ends without credentials."""


async def from_instance_metadata(session: aiohttp.ClientSession, env: Mapping[str, str],
                                 seconds: float, tokens: TokenCache, now: float) -> Credentials | None:
    """IMDSv2: a session token (``PUT /latest/api/token``, kept for its TTL), the instance role's name,
    its credentials (kept until shortly before they expire)."""
    if env.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
        return None
    base = (env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or IMDS).rstrip("/")
    quick = min(seconds, IMDS_TIMEOUT)

    async def session_token() -> Expiring[str]:
        try:
            token = await request(session, "IMDS", "PUT", URL(base + "/latest/api/token"),
                                  headers={"X-aws-ec2-metadata-token-ttl-seconds": str(IMDS_SESSION_TTL)},
                                  secrets=(), timeout=quick, limit=LIMIT)
        except ProviderError:
            raise _NoInstanceMetadata from None
        return Expiring(token.decode("ascii", "replace").strip(), now + IMDS_SESSION_TTL)

    async def fetch() -> Expiring[Credentials]:
        token = await tokens.get(digest("imds-session", base), now, session_token)
        headers = {"X-aws-ec2-metadata-token": token}
        path = "/latest/meta-data/iam/security-credentials/"
        roles = await request(session, "IMDS", "GET", URL(base + path), headers=headers, secrets=(token,),
                              timeout=quick, limit=LIMIT)
        role = roles.decode("utf-8", "replace").strip().splitlines()[:1]
        if not role:
            raise _NoInstanceMetadata
        body = await request(session, "IMDS", "GET", URL(base + path + role[0].strip()), headers=headers,
                             secrets=(token,), timeout=quick, limit=LIMIT)
        return _temporary(_json(body, "IMDS"), "instance metadata (IMDSv2)")

    try:
        return await tokens.get(digest("imds", base), now, fetch)
    except _NoInstanceMetadata:
        return None


def _json(body: bytes, source: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProviderError(f"error requesting cloudwatch: {source} sent an unreadable answer") from None


async def resolve(session: aiohttp.ClientSession, env: Mapping[str, str], region: str,
                  seconds: float, tokens: TokenCache, now: float) -> Credentials:
    """The first link of the chain that has credentials; :class:`ProviderError` when none does.
    Temporary credentials come from ``tokens`` while they are valid for more than its margin."""
    creds = (from_environment(env) or await from_web_identity(session, env, region, seconds, tokens, now)
             or from_shared_file(env) or await from_container(session, env, seconds, tokens, now)
             or await from_instance_metadata(session, env, seconds, tokens, now))
    if creds is None:
        raise ProviderError("error requesting cloudwatch: NoCredentialProviders: no valid providers in "
                            "chain (environment, web identity, shared credentials file, container, "
                            "instance metadata)")
    return creds
