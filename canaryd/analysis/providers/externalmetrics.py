"""The ``externalmetrics`` provider: the Kubernetes External Metrics API
(``external.metrics.k8s.io/v1beta1``), read as Flagger v1.44 reads it (docs/providers.md, "Kubernetes
external metrics").

A query is ``[<namespace>/]<metricName>[?labelSelector=<url-encoded selector>]`` (namespace ``default``);
canaryd asks ``GET /apis/external.metrics.k8s.io/v1beta1/namespaces/<ns>/<metricname>?labelSelector=…``
(the metric name lower-cased, the selector in its canonical form) and takes the *first* item's
``value``, a Kubernetes quantity (``1500m``, ``2Ki``, ``3e2``). Without ``address`` the request goes to
the API server through canaryd's own client and identity (its RBAC applies); with ``address`` it goes
there instead, with the secret's ``token`` as a bearer token, and never with canaryd's own credentials.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiohttp
import orjson

from canaryd.analysis.bounded import excerpt
from canaryd.analysis.providers.protocol import (
    ProviderError,
    ProviderNoValues,
    ProviderSettings,
    check_namespace,
)
from canaryd.analysis.providers.request import endpoint, parse_json, request, store_address
from canaryd.kube.errors import ApiError
from canaryd.kube.resources import Resource
from canaryd.model.providers import MetricProvider, MetricTemplate

NAME = "externalmetrics"
GROUP, VERSION = "external.metrics.k8s.io", "v1beta1"
# how the API-server client counts these requests (one label, whatever the metric's name)
EXTERNAL_METRICS = Resource(GROUP, VERSION, "externalmetrics", "ExternalMetricValueList")
FORMAT = "<namespace>/<metricName>?labelSelector=<urlencoded label selectors>"
_SUFFIX = {"": 1.0, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
           "E": 1e18, "Ki": 2.0 ** 10, "Mi": 2.0 ** 20, "Gi": 2.0 ** 30, "Ti": 2.0 ** 40, "Pi": 2.0 ** 50,
           "Ei": 2.0 ** 60}
_QUANTITY = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))([eE][+-]?\d+|[a-zA-Z]*)")
_TERM = re.compile(r"(!?)([A-Za-z0-9./_-]+)\s*(?:(==|=|!=|>|<)\s*([A-Za-z0-9._-]*)"
                   r"|\s+(in|notin)\s*\(([^()]*)\))?")


@dataclass(frozen=True)
class MetricQuery:
    namespace: str
    metric: str
    selector: str  # canonical; "" selects every series


def parse_query(query: str) -> MetricQuery:
    """Flagger's reading of the query (its error texts); the selector is put in the canonical form
    Kubernetes' label selectors print (terms sorted by key, ``in`` values sorted)."""
    parts = urlsplit("dummy:///" + query)
    path = unquote(parts.path).removeprefix("/")
    names = path.split("/")
    if len(names) > 2:
        raise ProviderError(f"error parsing metric query: malformed query string, too many slashes, "
                            f"expected {FORMAT}, got {excerpt(query, limit=120)}")
    namespace, metric = "default", names[-1]
    if len(names) == 2 and names[0]:
        namespace = names[0]
    if not metric:
        raise ProviderError("error parsing metric query: metric name cannot be empty")
    raw = (parse_qs(parts.query).get("labelSelector") or [""])[0]
    return MetricQuery(namespace, metric, canonical_selector(raw))


def _split_terms(text: str) -> list[str]:
    terms, depth, start = [], 0, 0
    for i, c in enumerate(text):
        depth += {"(": 1, ")": -1}.get(c, 0)
        if c == "," and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def canonical_selector(raw: str) -> str:
    """``b=2, a in (y,x)`` -> ``a in (x,y),b=2``; an unreadable selector is a query error."""
    if not raw.strip():
        return ""
    out: list[tuple[str, str]] = []
    for term in _split_terms(raw):
        m = _TERM.fullmatch(term.strip())
        if m is None or (m.group(1) and (m.group(3) or m.group(5))):
            raise ProviderError(f"error parsing metric query: error parsing label selector from string "
                                f"{excerpt(raw, limit=120)}: unable to parse requirement "
                                f"{excerpt(term.strip(), limit=60)!r}")
        neg, key, op, value, setop, values = m.groups()
        if op is not None:
            out.append((key, f"{key}{op}{value}"))
        elif setop is not None:
            items = sorted({v.strip() for v in values.split(",")})
            out.append((key, f"{key} {setop} ({','.join(items)})"))
        else:
            out.append((key, f"{neg}{key}"))
    out.sort(key=lambda kv: kv[0])
    return ",".join(text for _, text in out)


def quantity(text: Any) -> float:
    """A Kubernetes quantity as a float (``AsApproximateFloat64``)."""
    m = _QUANTITY.fullmatch(text) if isinstance(text, str) else None
    suffix = m.group(2) if m is not None else ""
    exponent = len(suffix) > 1 and suffix[0] in "eE"
    if m is None or not (exponent or suffix in _SUFFIX):
        raise ProviderError(f"{NAME}: unreadable metric value {excerpt(repr(text), limit=60)}")
    scale = 10.0 ** int(suffix[1:]) if exponent else _SUFFIX[suffix]
    return float(m.group(1)) * scale


def first_value(doc: Any) -> float:
    """``items[0].value`` of an ExternalMetricValueList; no items is "no values"."""
    items = doc.get("items") if isinstance(doc, dict) else None
    if items is not None and not isinstance(items, list):
        raise ProviderError(f"{NAME}: unreadable answer: items is not a list")
    if not items:
        raise ProviderNoValues("no external metrics found: no values found")
    first = items[0]
    return quantity(first.get("value") if isinstance(first, dict) else None)


def values_path(q: MetricQuery) -> str:
    """The values' URL path, the metric name lower-cased as client-go does (aiohttp percent-encodes)."""
    return f"/apis/{GROUP}/{VERSION}/namespaces/{q.namespace}/{q.metric.lower()}"


@dataclass(frozen=True)
class ExternalMetrics:
    """Stateless: one GET per query, to the API server (canaryd's client) or to ``address``."""

    def address_of(self, provider: MetricProvider) -> str:
        return provider.address

    async def query(self, session: aiohttp.ClientSession, template: MetricTemplate, rendered_query: str,
                    secrets: Mapping[str, str], settings: ProviderSettings) -> float:
        q = parse_query(rendered_query)
        params = {"labelSelector": q.selector} if q.selector else None
        if not template.provider.address:
            if settings.kube is None:
                raise ProviderError(f"{NAME}: no Kubernetes client configured")
            check_namespace(NAME, q.namespace, settings)  # under canaryd's identity: the tenant's own only
            try:
                doc = await settings.kube.get_path(EXTERNAL_METRICS, values_path(q), params)
            except ApiError as e:
                text = e.message if e.reason else _plain_error(e.status, e.message)  # no Status body
                raise ProviderError("error querying external metrics API: "
                                    f"{excerpt(text, limit=200)}") from None
            return first_value(doc)
        address = store_address(NAME, template.provider.address)
        token = secrets.get("token", "")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        url = endpoint(address, values_path(q))
        body = await request(session, NAME, "GET", url, headers=headers, params=params, secrets=(token,),
                             timeout=settings.timeout, limit=settings.max_answer_bytes,
                             ssl=not template.provider.insecure_skip_verify, describe=_describe)
        return first_value(parse_json(body, NAME, url, (token,)))


def _describe(body: bytes, status: int) -> str:
    """A non-200 answer, as client-go words a Status: ``error querying external metrics API: <message>``."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    message = doc.get("message") if isinstance(doc, dict) else None
    text = str(message) if message else _plain_error(status, "")
    return f"error querying external metrics API: {text}"


def _plain_error(status: int, body: str) -> str:
    """An error answer without a Status object, worded as client-go words it (the API server answers an
    unserved group with a plain ``404 page not found``)."""
    if status == 404:
        return "the server could not find the requested resource"
    return body or f"the server responded with the status code {status}"
