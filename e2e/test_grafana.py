"""The Grafana dashboard (``manifests/grafana/``) is built on metrics that exist: every PromQL expression
parses in the bed's real Prometheus, and every metric name it uses is one canaryd defines in its source and
exports on a live ``/metrics`` (or the mesh simulator exports as Istio's telemetry). The first two tests
are pure (the JSON and the source); the last two ask the bed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from e2e.mesh.metrics import DURATION, REQUESTS
from e2e.operator import Operator

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
    """Metric names canaryd defines (``Counter("name"``, ``Gauge(``, ``Histogram(``) and the simulator's."""
    out: set[str] = set()
    for path in (ROOT / "canaryd").rglob("*.py"):
        found = re.findall(r'\b(Counter|Gauge|Histogram)\(\s*"([a-z_:][a-z0-9_:]*)"', path.read_text())
        for kind, name in found:
            out |= families({name}, kind.lower())
    return out | {REQUESTS} | families({DURATION}, "histogram")


def exported(text: str) -> set[str]:
    """Sample names on a /metrics page, and the families its # TYPE lines declare (a labelled metric with
    no child yet shows only those)."""
    out: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            out |= families({name}, kind.strip())
        elif line and not line.startswith("#"):
            out.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return out


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


@pytest.mark.usefixtures("namespace")
async def test_every_metric_name_is_exported_live(bed: Any, operator: Operator) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{bed.mesh_url}/metrics") as resp:
            mesh = await resp.text()
    live = exported(operator.metrics_text()) | exported(mesh)
    used = set().union(*(metric_names(substituted(e)) for e in expressions(dashboard())))
    assert used - live == set(), f"not on canaryd's or the simulator's /metrics: {used - live}"
