"""Pure routing decisions of the simulator: host names, Service → workloads, route match, weighted choice.

Everything here is a function of its arguments (no I/O, no clock, randomness passed in as a draw), so the
simulator's Envoy-like behaviour is tested with plain tables."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]
CLUSTER_SUFFIX = ".svc.cluster.local"


@dataclass(frozen=True)
class Host:
    """A request's Host split into a Service name and namespace (``namespace`` None: not a Service form)."""

    name: str
    namespace: str | None
    literal: str  # lower-case, without port


def strip_port(header: str) -> str:
    """``Podinfo.Test:9898`` → ``podinfo.test``; ``[::1]:80`` → ``[::1]``."""
    host = header.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


def parse_host(header: str, default_namespace: str | None) -> Host:
    """``podinfo-canary:9898`` → (podinfo-canary, default ns); ``podinfo.test[.svc[.cluster.local]]`` →
    (podinfo, test). Anything else (``app.example.com``, ``podinfo.test.svc.other``) keeps its full name,
    namespace None: it can only be a VirtualService host."""
    literal = strip_port(header)
    host = literal
    for suffix in (CLUSTER_SUFFIX, ".svc"):
        if host.endswith(suffix):
            host = host[: -len(suffix)]
            break
    parts = host.split(".")
    if len(parts) == 1 and host:
        return Host(host, default_namespace, literal)
    if len(parts) == 2 and all(parts):
        return Host(parts[0], parts[1], literal)
    return Host(literal, None, literal)


def fqdn(name: str, namespace: str) -> str:
    return f"{name}.{namespace}{CLUSTER_SUFFIX}"


def request_keys(header: str, default_namespace: str | None) -> list[str]:
    """The names a request's Host can match VirtualService hosts by: its literal form and, when it names a
    Service (bare names need a namespace), that Service's FQDN."""
    host = parse_host(header, default_namespace)
    keys = [host.literal]
    if host.namespace is not None:
        full = fqdn(host.name, host.namespace)
        if full != host.literal:
            keys.append(full)
    return keys


def vs_host_key(host: str, vs_namespace: str) -> str:
    """How Istio reads a VirtualService host: a short name is a Service of the VirtualService's namespace;
    ``<svc>.<ns>`` and ``<svc>.<ns>.svc`` are read as Service names too; the rest is literal."""
    h = strip_port(host)
    if "." not in h:
        return fqdn(h, vs_namespace)
    parsed = parse_host(h, None)
    if parsed.namespace is not None:
        return fqdn(parsed.name, parsed.namespace)
    return h


def selector_matches(selector: Mapping[str, str] | None, labels: Mapping[str, str] | None) -> bool:
    """A Service selector matches pod labels; an empty selector selects nothing (no endpoints managed)."""
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def template_labels(deployment: JSON) -> dict[str, str]:
    labels = (((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")
    return dict(labels or {})


def workloads_for_service(service: JSON, deployments: Sequence[JSON]) -> list[JSON]:
    """The Deployments (by name) whose pod template labels match the Service's selector."""
    selector = (service.get("spec") or {}).get("selector") or {}
    found = [d for d in deployments if selector_matches(selector, template_labels(d))]
    found.sort(key=lambda d: str(d["metadata"]["name"]))
    return found


def available_replicas(deployment: JSON) -> int:
    try:
        return max(int((deployment.get("status") or {}).get("availableReplicas") or 0), 0)
    except (TypeError, ValueError):
        return 0


def pick_workload(workloads: Sequence[JSON], draw: float) -> JSON | None:
    """Like kube-proxy over the endpoints of all matching pods: weighted by available replicas; None when
    no workload has an available replica."""
    counts = [available_replicas(d) for d in workloads]
    total = sum(counts)
    if total <= 0:
        return None
    point = draw * total
    acc = 0
    for d, n in zip(workloads, counts, strict=True):
        acc += n
        if point < acc:
            return d
    return workloads[-1]


def string_match(rule: Mapping[str, Any] | None, value: str | None, *, ignore_case: bool = False) -> bool:
    """Istio's StringMatch: exact, prefix or regex (RE2, full match); an empty rule matches any present
    value."""
    if value is None:
        return False
    rule = rule or {}

    def fold(s: str) -> str:
        return s.lower() if ignore_case else s

    if "exact" in rule:
        return fold(value) == fold(str(rule["exact"]))
    if "prefix" in rule:
        return fold(value).startswith(fold(str(rule["prefix"])))
    if "regex" in rule:
        try:
            return re.fullmatch(str(rule["regex"]), value) is not None
        except re.error:
            return False
    return True


@dataclass(frozen=True)
class RequestView:
    """What route matching looks at: method, path with query, authority, lower-case header names."""

    method: str
    path: str  # with the query string
    authority: str
    headers: Mapping[str, str]

    @property
    def uri(self) -> str:
        return self.path.split("?", 1)[0]

    def query(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if "?" in self.path:
            for part in self.path.split("?", 1)[1].split("&"):
                key, _, value = part.partition("=")
                out.setdefault(key, value)
        return out


def block_matches(block: Mapping[str, Any], req: RequestView) -> bool:
    """One HTTPMatchRequest: every condition given must hold (uri, method, authority, headers,
    withoutHeaders, queryParams); conditions the bed cannot see (sourceLabels, gateways, port) are ignored."""
    if "uri" in block and not string_match(
        block["uri"], req.uri, ignore_case=bool(block.get("ignoreUriCase"))
    ):
        return False
    if "method" in block and not string_match(block["method"], req.method):
        return False
    if "authority" in block and not string_match(block["authority"], req.authority):
        return False
    for name, rule in (block.get("headers") or {}).items():
        if not string_match(rule, req.headers.get(str(name).lower())):
            return False
    for name, rule in (block.get("withoutHeaders") or {}).items():
        if string_match(rule, req.headers.get(str(name).lower())):
            return False
    if block.get("queryParams"):
        query = req.query()
        for name, rule in block["queryParams"].items():
            if not string_match(rule, query.get(str(name))):
                return False
    return True


def request_matches(match: Sequence[Mapping[str, Any]] | None, req: RequestView) -> bool:
    """A route without ``match`` takes everything; otherwise any one block must fit."""
    if not match:
        return True
    return any(block_matches(block, req) for block in match)


def choose_route(vs: JSON, req: RequestView) -> JSON | None:
    """The first http route of the VirtualService whose match fits the request (Envoy's order)."""
    for route in (vs.get("spec") or {}).get("http") or []:
        if request_matches(route.get("match"), req):
            return dict(route)
    return None


def pick_route_destination(route: Mapping[str, Any], draw: float) -> JSON | None:
    """Weighted choice of a destination entry (``{destination, weight, headers}``); ``draw`` in [0, 1).
    A single destination without weight takes everything; several without any weight share equally; None
    when every weight is 0 and there are several."""
    dests = [d for d in route.get("route") or [] if (d.get("destination") or {}).get("host")]
    if not dests:
        return None
    if len(dests) == 1:
        return dict(dests[0])
    given = [d.get("weight") for d in dests]
    weights = [1] * len(dests) if all(w is None for w in given) else [int(w or 0) for w in given]
    total = sum(weights)
    if total <= 0:
        return None
    point = draw * total
    acc = 0
    for d, w in zip(dests, weights, strict=True):
        acc += w
        if point < acc:
            return dict(d)
    return dict(dests[-1])


def pick_destination(route: Mapping[str, Any], draw: float) -> str | None:
    """The host of :func:`pick_route_destination`."""
    entry = pick_route_destination(route, draw)
    return None if entry is None else str(entry["destination"]["host"])


def response_headers(route: Mapping[str, Any], entry: Mapping[str, Any] | None) -> dict[str, str]:
    """Headers Envoy adds to the response: the route's ``headers.response`` then the chosen destination's
    (``set`` and ``add`` put a value — one per name here —, ``remove`` drops one put by the route)."""
    out: dict[str, str] = {}
    for holder in (route, entry or {}):
        ops = (holder.get("headers") or {}).get("response") or {}
        for op in ("set", "add"):
            for name, value in (ops.get(op) or {}).items():
                out[str(name)] = str(value)
        for name in ops.get("remove") or []:
            out.pop(str(name), None)
    return out


def matched_block(route: Mapping[str, Any], req: RequestView) -> JSON | None:
    """The first match block of ``route`` that fits ``req`` (None: the route has no match)."""
    for block in route.get("match") or []:
        if block_matches(block, req):
            return dict(block)
    return None


def rewritten_path(route: Mapping[str, Any], req: RequestView) -> str:
    """``rewrite.uri``: replaces the matched ``uri.prefix`` (Envoy's prefix_rewrite), else the whole path;
    the query string is kept."""
    new = (route.get("rewrite") or {}).get("uri")
    if not new:
        return req.path
    query = req.path[len(req.uri):]
    block = matched_block(route, req) or {}
    prefix = (block.get("uri") or {}).get("prefix")
    if prefix and req.uri.startswith(str(prefix)):
        return str(new) + req.uri[len(str(prefix)):] + query
    return str(new) + query


def delegate_of(route: Mapping[str, Any], vs_namespace: str) -> tuple[str, str] | None:
    """``delegate: {name, namespace}`` of a root VirtualService route as (namespace, name)."""
    d = route.get("delegate") or {}
    if not d.get("name"):
        return None
    return str(d.get("namespace") or vs_namespace), str(d["name"])


def mirror_of(route: Mapping[str, Any], draw: float) -> str | None:
    """The mirror destination host when this request is mirrored: ``mirrorPercentage.value`` (or the old
    ``mirrorPercent``), 100 % when neither is set."""
    host = (route.get("mirror") or {}).get("host")
    if not host:
        return None
    if "mirrorPercentage" in route:
        percent = float((route.get("mirrorPercentage") or {}).get("value") or 0)
    elif "mirrorPercent" in route:
        percent = float(route.get("mirrorPercent") or 0)
    else:
        percent = 100.0
    return str(host) if draw * 100 < percent else None


def vs_hosts(vs: JSON) -> list[str]:
    return [str(h).lower() for h in (vs.get("spec") or {}).get("hosts") or []]


def route_weights(vs: JSON) -> list[list[Any]]:
    """[[destination host, weight], …] of every http route, in order (for ``GET /_bed/routes``)."""
    return [
        [(d.get("destination") or {}).get("host"), d.get("weight")]
        for route in (vs.get("spec") or {}).get("http") or []
        for d in route.get("route") or []
    ]


@dataclass(frozen=True)
class Behaviour:
    """What a workload's pods would do, from its pod template."""

    version: str
    error_percent: float
    latency_ms: float
    app: str
    version_label: str
    # a latency profile (0 = none): each request takes a lognormal time with this median and sigma,
    # times ``latency_factor`` (1.3: the distribution shifted by +30 %), reported as Envoy would see it
    latency_median_ms: float = 0.0
    latency_sigma: float = 0.3
    latency_factor: float = 1.0

    def profile_ms(self, rng: random.Random) -> float:
        """One request's time under the latency profile (0 without one)."""
        if self.latency_median_ms <= 0:
            return 0.0
        return rng.lognormvariate(math.log(self.latency_median_ms), self.latency_sigma) * self.latency_factor


def image_tag(image: str) -> str:
    """``ghcr.io/stefanprodan/podinfo:6.0.1`` → ``6.0.1``; a digest or no tag → ``latest``."""
    last = image.rsplit("/", 1)[-1].split("@", 1)[0]
    return last.rsplit(":", 1)[1] if ":" in last else "latest"


def workload_behaviour(deployment: JSON) -> Behaviour:
    """Version = the image tag of the first container; ``BED_ERROR_PERCENT`` / ``BED_LATENCY_MS`` and the
    latency profile ``BED_LATENCY_MEDIAN_MS`` / ``BED_LATENCY_SIGMA`` / ``BED_LATENCY_FACTOR`` from its env
    (per revision: the pod template's); ``app``/``version`` labels of the pod template for Istio's
    destination_app/destination_version."""
    name = str((deployment.get("metadata") or {}).get("name", ""))
    pod_spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = pod_spec.get("containers") or []
    labels = template_labels(deployment)
    app = labels.get("app") or labels.get("app.kubernetes.io/name") or name
    first = containers[0] if containers else {}
    version = image_tag(str(first.get("image", ""))) if first else ""
    env = {str(e.get("name")): str(e.get("value", "")) for e in first.get("env") or [] if isinstance(e, dict)}

    def num(key: str) -> float:
        try:
            return max(float(env.get(key, "0") or 0), 0.0)
        except ValueError:
            return 0.0

    version_label = labels.get("version") or labels.get("app.kubernetes.io/version") or version
    return Behaviour(version, num("BED_ERROR_PERCENT"), num("BED_LATENCY_MS"), app, version_label,
                     latency_median_ms=num("BED_LATENCY_MEDIAN_MS"),
                     latency_sigma=num("BED_LATENCY_SIGMA") if "BED_LATENCY_SIGMA" in env else 0.3,
                     latency_factor=num("BED_LATENCY_FACTOR") if "BED_LATENCY_FACTOR" in env else 1.0)
