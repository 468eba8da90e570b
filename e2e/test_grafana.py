"""The Grafana dashboard (``manifests/grafana/``) is built on metrics that exist: every PromQL expression
parses in the bed's real Prometheus, and every metric name it uses is one canaryd defines in its source and
exports on a live ``/metrics`` (or the mesh simulator exports as Istio's telemetry). The first two tests
are pure (the JSON and the source); the last two ask the bed: every expression parses, and every panel
shows data from the bed's Prometheus scraping a canaryd through a promoted and a rolled back run."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from e2e.bed.waiting import wait_for
from e2e.canaries import canary, create, podinfo, set_image, wait_phase
from e2e.mesh.control import MeshControl
from e2e.mesh.metrics import DURATION, REQUESTS
from e2e.operator import Operator
from e2e.promql import query, scraped
from e2e.receivers import Receiver

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "manifests" / "grafana" / "canaryd-canary.json"

# what Grafana substitutes before a query reaches Prometheus
VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$namespace": "test", "$target": "podinfo"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and",
                "or", "unless", "inf", "nan"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def expressions(doc: dict[str, Any]) -> list[str]:
    """Every panel query and every query variable of the dashboard."""
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    for var in doc["templating"]["list"]:
        if var["type"] == "query":
            q = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            m = re.fullmatch(r"label_values\((.*),\s*\w+\)", q)
            exprs.append(m.group(1) if m else q)  # label_values(selector, label): the selector is PromQL
    return exprs


def substituted(expr: str) -> str:
    for var, value in sorted(VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(var, value)
    assert "$" not in expr, f"a variable Grafana would not substitute: {expr}"
    return expr


def metric_names(expr: str) -> set[str]:
    """Metric names used in a PromQL expression: identifiers outside label matchers, grouping clauses,
    strings and ranges that are not function calls or keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word, rest = m.group(0), text[m.end():].lstrip()
        if rest.startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def families(names: set[str], kind: str) -> set[str]:
    """The sample names a metric of ``kind`` (prometheus_client's) shows on /metrics."""
    out = set()
    for n in names:
        if kind == "counter":
            out.add(n if n.endswith("_total") else f"{n}_total")
        elif kind == "histogram":
            out.update(f"{n}{s}" for s in HISTOGRAM_SUFFIXES)
        else:
            out.add(n)
    return out


def defined_in_source() -> set[str]:
    """Metric names canaryd defines (``Counter("name"``, ``Gauge(``, ``Histogram(``, ``PlainHistogram(``,
    and the collectors' ``GaugeMetricFamily(``) and the simulator's."""
    out: set[str] = set()
    for path in (ROOT / "canaryd").rglob("*.py"):
        found = re.findall(
            r'\b(Counter|Gauge|Histogram|PlainHistogram|GaugeMetricFamily)\(\s*"([a-z_:][a-z0-9_:]*)"',
            path.read_text())
        for kind, name in found:
            out |= families({name}, kind.lower().removesuffix("metricfamily").removeprefix("plain"))
    return out | {REQUESTS} | families({DURATION}, "histogram")


def test_metric_name_extraction() -> None:
    cases = {
        'sum(rate(istio_requests_total{reporter="destination", x=~"a|b"}[1m])) by (le)':
            {"istio_requests_total"},
        "histogram_quantile(0.99, sum by (le, check) (rate(canaryd_check_duration_seconds_bucket[1m])))":
            {"canaryd_check_duration_seconds_bucket"},
        'a / on (x) group_left b * 100 and bool c{d="by (e)"}': {"a", "b", "c"},
        "canaryd_leader": {"canaryd_leader"},
    }
    for expr, want in cases.items():
        assert metric_names(expr) == want, expr


def test_dashboard_uses_only_metrics_canaryd_or_istio_define_and_covers_the_analysis() -> None:
    doc = dashboard()
    used = set().union(*(metric_names(substituted(e)) for e in expressions(doc)))
    unknown = used - defined_in_source()
    assert unknown == set(), f"metrics no part of canaryd (or Istio's telemetry) defines: {unknown}"
    # what the issue asks the dashboard to show
    for needed in ("flagger_canary_weight", "flagger_canary_status", "flagger_canary_metric_analysis",
                   "istio_requests_total", "istio_request_duration_milliseconds_bucket",
                   "canaryd_api_requests_total", "canaryd_watch_restarts_total", "canaryd_leader"):
        assert needed in used, needed
    titles = [p["title"] for p in doc["panels"]]
    assert len(titles) == len(set(titles)), titles
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)), ids


async def test_every_expression_parses_in_the_beds_prometheus(bed: Any) -> None:
    exprs = [substituted(e) for e in expressions(dashboard())]
    bad: list[tuple[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        for expr in exprs:
            async with session.post(f"{bed.prometheus_url}/api/v1/query", data={"query": expr}) as resp:
                body = await resp.json()
            if resp.status != 200 or body.get("status") != "success":
                bad.append((expr, body.get("error", body)))
    assert bad == [], bad


# panels on counters of rare events: no series until the first one, which a run on a healthy bed need
# not have; their metric is counted where the event is forced (the test named)
RARE = {
    "Watch restarts": "e2e/test_informers.py::test_forced_410_relists_and_drops_objects_deleted_meanwhile "
                      "(canaryd_watch_restarts_total after an outage and a relist)",
    "API errors (non-2xx, connection errors)":
        "e2e/test_faults.py (canaryd_api_requests_total{code=\"error\"} while the API server is down)",
}


def rate_interval(step: float, scrape: float = 1.0) -> str:
    """Grafana's ``$__rate_interval``: max($__interval + scrape interval, 4 × scrape interval)."""
    return f"{max(step + scrape, 4 * scrape):g}s"


def panel_queries(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expression) of every panel query."""
    return [(p["title"], t["expr"]) for p in doc["panels"] for t in p.get("targets", [])]


def variable_queries(doc: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """variable name → (selector, label) of each ``label_values(selector, label)`` template variable."""
    out = {}
    for var in doc["templating"]["list"]:
        if var["type"] == "query":
            q = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q)
            assert m, f"a template variable query Grafana's Prometheus source has no equivalent here: {q}"
            out[var["name"]] = (m.group(1), m.group(2))
    return out


def test_grafanas_substitutions() -> None:
    assert rate_interval(1.0) == "4s" and rate_interval(15.0, 15.0) == "60s"
    values = {"$__rate_interval": "4s", "$__range": "90s", "$__interval": "2s", "$namespace": "ns",
              "$target": "podinfo"}
    got = substituted_with('x{w="$target-primary"}[$__rate_interval]', values)
    assert got == 'x{w="podinfo-primary"}[4s]'
    with pytest.raises(AssertionError):
        substituted_with("x[$__unknown]", values)


def substituted_with(expr: str, values: dict[str, str]) -> str:
    for var, value in sorted(values.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(var, value).replace("${" + var[1:] + "}", value)
    assert "$" not in expr, f"a variable Grafana would not substitute: {expr}"
    return expr


async def _range(prometheus_url: str, expr: str, start: float, end: float, step: float) -> list[Any]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{prometheus_url}/api/v1/query_range",
                                data={"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                      "step": f"{step:g}"}) as resp:
            body = await resp.json()
    assert resp.status == 200 and body.get("status") == "success", (expr, body)
    return [s for s in body["data"]["result"] if s["values"]]


async def _label_values(prometheus_url: str, selector: str, label: str, start: float, end: float) -> set[str]:
    async with aiohttp.ClientSession() as session:
        params = {"match[]": selector, "start": f"{start:.3f}", "end": f"{end:.3f}"}
        async with session.get(f"{prometheus_url}/api/v1/series", params=params) as resp:
            body = await resp.json()
    assert resp.status == 200 and body.get("status") == "success", (selector, body)
    return {s[label] for s in body["data"] if label in s}


async def test_every_panel_shows_data_after_a_promotion_and_a_rollback(
        bed: Any, namespace: str, operator_factory: Callable[..., Operator]) -> None:
    """The dashboard as Grafana would draw it for this test's Canary: each panel's queries (Grafana's
    variables substituted) return data from the bed's Prometheus scraping this test's canaryd, over the
    time of a promoted and a rolled back run; the template variables offer the test's namespace and
    target."""
    ns = namespace
    alerts = await Receiver().start()  # the Notifications panel: alerts sent for both runs
    await MeshControl(bed.mesh_url).register(ns, "slack", f"127.0.0.1:{alerts.port}")
    operator = operator_factory(ns, env={"SLACK_URL": f"http://slack.{ns}/hook"})
    admin = await bed.admin_client(user_agent="e2e-grafana")
    start = time.time()
    try:
        with scraped(bed, operator, e2e_namespace=ns, replica="grafana"):
            await create(admin, ns, podinfo(ns), canary(ns))
            await wait_phase(admin, ns, "Initialized")
            await set_image(admin, ns, "6.0.1")
            await wait_phase(admin, ns, "Succeeded")
            await set_image(admin, ns, "6.0.2", env={"BED_ERROR_PERCENT": "100"})
            await wait_phase(admin, ns, "Failed")

            async def scraped_failure() -> bool:  # a few scrapes of it: increase() needs two samples
                got = await query(str(bed.prometheus_url),
                                  f'count_over_time(flagger_canary_failures_total{{e2e_namespace="{ns}"}}[1m])')
                return bool(got) and got[0][1] >= 3

            await wait_for(scraped_failure, 20, "the rollback counted in Prometheus", interval=0.5)
            end = time.time() + 1
    finally:
        await admin.close()
        await alerts.stop()
    step = 2.0
    values = {"$__rate_interval": rate_interval(step), "$__interval": f"{step:g}s",
              "$__range": f"{int(end - start) + 1}s", "$namespace": ns, "$target": "podinfo"}
    doc = dashboard()
    assert set(RARE) <= {p["title"] for p in doc["panels"]}, "RARE names a panel the dashboard lacks"
    empty = []
    for title, expr in panel_queries(doc):
        if not await _range(str(bed.prometheus_url), substituted_with(expr, values), start, end, step):
            empty.append((title, expr))
    missing = [(t, e) for t, e in empty if t not in RARE]
    assert missing == [], f"panels with no data: {missing}"
    variables = variable_queries(doc)
    selector, label = variables["namespace"]
    assert ns in await _label_values(str(bed.prometheus_url), substituted_with(selector, values), label,
                                     start, end)
    selector, label = variables["target"]
    assert await _label_values(str(bed.prometheus_url), substituted_with(selector, values), label,
                               start, end) == {"podinfo"}
