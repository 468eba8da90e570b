"""The AWS SDK's default credentials chain, configured by canaryd's own environment (never by a
template), in the AWS SDK for Go v1's order (Flagger's CloudWatch provider has no secretRef; it uses this
chain): environment variables, IRSA web identity (STS ``AssumeRoleWithWebIdentity``), the shared
credentials file, the container endpoint (EKS Pod Identity, ECS), then EC2 instance metadata (IMDSv2).
Temporary credentials are fetched for each query, not cached (docs/providers.md)."""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import aiohttp
import orjson
from yarl import URL

from canaryd.analysis.providers.protocol import ProviderError
from canaryd.analysis.providers.request import request
from canaryd.analysis.providers.sigv4 import Credentials

IMDS = "http://169.254.169.254"
IMDS_TIMEOUT = 1.0  # seconds per instance-metadata request, as the SDKs bound it
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


def _temporary(doc: Any, source: str) -> Credentials:
    if not isinstance(doc, dict) or not doc.get("AccessKeyId") or not doc.get("SecretAccessKey"):
        raise ProviderError(f"error requesting cloudwatch: {source} sent no credentials")
    return Credentials(str(doc["AccessKeyId"]), str(doc["SecretAccessKey"]), str(doc.get("Token") or ""),
                       source)


async def from_web_identity(session: aiohttp.ClientSession, env: Mapping[str, str], region: str,
                            seconds: float) -> Credentials | None:
    """IRSA: the projected service-account token exchanged at STS (``AssumeRoleWithWebIdentity``, an
    unsigned call) for the role's temporary credentials."""
    token_file, role = env.get("AWS_WEB_IDENTITY_TOKEN_FILE", ""), env.get("AWS_ROLE_ARN", "")
    if not token_file or not role:
        return None
    token = _file(token_file)
    base = env.get("AWS_ENDPOINT_URL_STS") or env.get("AWS_ENDPOINT_URL") or f"https://sts.{region}.amazonaws.com"
    params = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": role,
              "RoleSessionName": env.get("AWS_ROLE_SESSION_NAME") or "canaryd", "WebIdentityToken": token}
    body = await request(session, "STS", "POST", URL(base.rstrip("/") + "/"), headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "Accept": "application/xml"},
        data=urlencode(params).encode(), secrets=(token,),
        timeout=seconds, limit=LIMIT)
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise ProviderError("error requesting cloudwatch: STS sent an unreadable answer") from None
    found = {el.tag.rsplit("}", 1)[-1]: (el.text or "") for el in root.iter()}
    keys = {"AccessKeyId": "AccessKeyId", "SecretAccessKey": "SecretAccessKey", "Token": "SessionToken"}
    return _temporary({ours: found.get(theirs) for ours, theirs in keys.items()}, "web identity (STS)")


async def from_container(session: aiohttp.ClientSession, env: Mapping[str, str],
                         seconds: float) -> Credentials | None:
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
    body = await request(session, "container credentials", "GET", url, headers=headers, secrets=(token,),
                         timeout=seconds, limit=LIMIT)
    return _temporary(_json(body, "container credentials"), "container credentials")


async def from_instance_metadata(session: aiohttp.ClientSession, env: Mapping[str, str],
                                 seconds: float) -> Credentials | None:
    """IMDSv2: a session token (``PUT /latest/api/token``), the instance role's name, its credentials."""
    if env.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
        return None
    base = (env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or IMDS).rstrip("/")
    quick = min(seconds, IMDS_TIMEOUT)
    try:
        token = (await request(session, "IMDS", "PUT", URL(base + "/latest/api/token"),
                               headers={"X-aws-ec2-metadata-token-ttl-seconds": "21600"}, secrets=(),
                               timeout=quick, limit=LIMIT)).decode("ascii", "replace").strip()
    except ProviderError:
        return None  # not on EC2 (or IMDS unreachable): the chain ends without credentials
    headers = {"X-aws-ec2-metadata-token": token}
    path = "/latest/meta-data/iam/security-credentials/"
    roles = await request(session, "IMDS", "GET", URL(base + path), headers=headers, secrets=(token,),
                          timeout=quick, limit=LIMIT)
    role = roles.decode("utf-8", "replace").strip().splitlines()[:1]
    if not role:
        return None
    body = await request(session, "IMDS", "GET", URL(base + path + role[0].strip()), headers=headers,
                         secrets=(token,), timeout=quick, limit=LIMIT)
    return _temporary(_json(body, "IMDS"), "instance metadata (IMDSv2)")


def _json(body: bytes, source: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProviderError(f"error requesting cloudwatch: {source} sent an unreadable answer") from None


async def resolve(session: aiohttp.ClientSession, env: Mapping[str, str], region: str,
                  seconds: float) -> Credentials:
    """The first link of the chain that has credentials; :class:`ProviderError` when none does."""
    creds = (from_environment(env) or await from_web_identity(session, env, region, seconds)
             or from_shared_file(env) or await from_container(session, env, seconds)
             or await from_instance_metadata(session, env, seconds))
    if creds is None:
        raise ProviderError("error requesting cloudwatch: NoCredentialProviders: no valid providers in "
                            "chain (environment, web identity, shared credentials file, container, "
                            "instance metadata)")
    return creds
