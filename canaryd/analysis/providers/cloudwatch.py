"""CloudWatch: ``GetMetricData`` through CloudWatch's query API (``POST /`` form-encoded, XML answer,
SigV4-signed), as Flagger v1.44 calls it through the AWS SDK: the template's query is a JSON list of
``MetricDataQuery``, the window is ten metric intervals ending now with ``MaxDatapoints=20``, and the
first value of the first returned result is the value. Credentials come from canaryd's own environment
(:mod:`canaryd.analysis.providers.awscreds`); there is no secretRef."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

import aiohttp
import orjson
from yarl import URL

from canaryd.analysis.bounded import excerpt
from canaryd.analysis.providers import awscreds
from canaryd.analysis.providers.awsretry import with_retries
from canaryd.analysis.providers.protocol import ProviderError, ProviderNoValues, ProviderSettings
from canaryd.analysis.providers.request import request
from canaryd.analysis.providers.sigv4 import sign
from canaryd.analysis.urls import host_of
from canaryd.model.providers import MetricProvider, MetricTemplate

NAME = "CloudWatch"
SERVICE = "monitoring"
API_VERSION = "2010-08-01"
WINDOW_INTERVALS = 10
MAX_DATAPOINTS = 20
CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
# MetricDataQuery's members: Go's JSON decoding matches field names case-insensitively
_NAMES = {n.lower(): n for n in ("Id", "Expression", "Label", "MetricStat", "Metric", "Namespace",
                                 "MetricName", "Dimensions", "Name", "Value", "Period", "Stat", "Unit",
                                 "ReturnData", "AccountId")}


def endpoint(region: str, environ: Mapping[str, str]) -> URL:
    """``https://monitoring.<region>.amazonaws.com``, or canaryd's ``AWS_ENDPOINT_URL_CLOUDWATCH`` /
    ``AWS_ENDPOINT_URL`` (the SDKs' endpoint override; the operator's setting, never a template's)."""
    custom = environ.get("AWS_ENDPOINT_URL_CLOUDWATCH") or environ.get("AWS_ENDPOINT_URL")
    return URL(custom.rstrip("/") + "/" if custom else f"https://{SERVICE}.{region}.amazonaws.com/")


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    """The query protocol's form of a JSON value: ``A.B`` for members, ``A.member.N`` for lists."""
    if isinstance(value, dict):
        for k, v in value.items():
            name = _NAMES.get(str(k).lower())
            if name is not None and v is not None:
                _flatten(f"{prefix}.{name}", v, out)
    elif isinstance(value, list):
        for i, v in enumerate(value, 1):
            _flatten(f"{prefix}.member.{i}", v, out)
    elif isinstance(value, bool):
        out.append((prefix, "true" if value else "false"))
    elif isinstance(value, float) and value.is_integer():
        out.append((prefix, str(int(value))))
    else:
        out.append((prefix, str(value)))


def form(queries: list[Any], start: float, end: float) -> bytes:
    fields: list[tuple[str, str]] = [("Action", "GetMetricData"), ("Version", API_VERSION)]
    fields += [("EndTime", _iso(end)), ("MaxDatapoints", str(MAX_DATAPOINTS))]
    _flatten("MetricDataQueries", queries, fields)
    fields.append(("StartTime", _iso(start)))
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in fields).encode()


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t)))


def parse_queries(rendered: str) -> list[Any]:
    try:
        doc = orjson.loads(rendered)
    except orjson.JSONDecodeError as e:
        raise ProviderError(f"error unmarshaling query: {e}") from None
    if not isinstance(doc, list) or not all(isinstance(q, dict) for q in doc):
        raise ProviderError("error unmarshaling query: expected a JSON list of MetricDataQuery objects")
    return doc


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ElementTree.Element | None, name: str) -> ElementTree.Element | None:
    if el is None:
        return None
    return next((c for c in el if _local(c.tag) == name), None)


def first_value(body: bytes, quoted: str) -> float:
    """``MetricDataResults[0].Values[0]`` of a GetMetricData answer."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise ProviderError(f"{NAME} sent an unreadable answer: {quoted}") from None
    results = _child(_child(root, "GetMetricDataResult"), "MetricDataResults")
    members = [m for m in results if _local(m.tag) == "member"] if results is not None else []
    if not members:
        raise ProviderNoValues(f"invalid response: {quoted}: no values found")
    values = _child(members[0], "Values")
    first = next((v for v in values if _local(v.tag) == "member"), None) if values is not None else None
    if first is None:
        raise ProviderNoValues(f"invalid reponse {quoted}: no values found")
    try:
        return float((first.text or "").strip())
    except ValueError:
        text = excerpt(first.text or "", limit=60)
        raise ProviderError(f"{NAME} sent an unparsable value: {text}") from None


def error_text(body: bytes, status: int) -> str:
    """``Code: Message (status code: N)`` of an AWS error answer, as the SDK words it."""
    try:
        err = _child(ElementTree.fromstring(body), "Error")
    except ElementTree.ParseError:
        err = None
    code = _child(err, "Code")
    message = _child(err, "Message")
    if code is None:
        return f"{excerpt(body)} (status code: {status})"
    said = excerpt(message.text or "") if message is not None else ""
    return f"{excerpt(code.text or '', limit=60)}: {said} (status code: {status})"


class CloudWatch:
    def address_of(self, provider: MetricProvider) -> str:
        """Where a query of ``provider`` goes, for messages."""
        return str(endpoint(provider.region or "<no region>", os.environ))

    async def query(self, session: aiohttp.ClientSession, template: MetricTemplate, rendered_query: str,
                    secrets: Mapping[str, str], settings: ProviderSettings) -> float:
        started = time.monotonic()
        region = template.provider.region
        if not region:
            raise ProviderError("region not specified")
        queries = parse_queries(rendered_query)
        creds = await awscreds.resolve(session, settings.environ, region, settings.timeout, settings.tokens,
                                       settings.now())
        url = endpoint(region, settings.environ)
        end = settings.now()
        body = form(queries, end - WINDOW_INTERVALS * settings.interval_seconds, end)
        headers = sign(creds, "POST", url.path or "/", {"Host": _host(url), "Content-Type": CONTENT_TYPE},
                       body, region=region, service=SERVICE,
                       amz_date=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(int(end))))
        hidden = (creds.secret_key, creds.token)

        def describe(answer: bytes, code: int) -> str:
            return "error requesting cloudwatch: " + error_text(answer, code)

        async def call(seconds: float) -> bytes:  # the same signed request each time (X-Amz-Date kept)
            return await request(session, NAME, "POST", url, headers=headers, data=body, secrets=hidden,
                                 timeout=min(seconds, settings.timeout), limit=settings.max_answer_bytes,
                                 describe=describe)

        left = (settings.budget or settings.timeout) - (time.monotonic() - started)  # after the credentials
        answer = await with_retries(call, max(left, 0.1))
        return first_value(answer, excerpt(answer, "", *hidden))


def _host(url: URL) -> str:
    """The Host header aiohttp sends (the port only when not the scheme's default), which is signed."""
    return (url.host or "") if url.is_default_port() else host_of(str(url))
