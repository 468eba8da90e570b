"""Runs provider queries in a fresh process, through canaryd's own outbound session
(:func:`canaryd.analysis.outbound.outbound_session`), so the process environment a test gives it
(``HTTPS_PROXY``, ``NO_PROXY``, ``SSL_CERT_FILE``) is read exactly as canaryd reads it at start
(tests/analysis/providers/test_outbound.py).

    python3 -m tests.analysis.providers.outbound_probe '[{"type": "datadog", "address": "https://…",
                                                         "secrets": {…}, "query": "…"}, …]'

Prints one JSON line per query: ``{"value": 1.0}`` or ``{"error": "<the check's text>"}``.
"""

from __future__ import annotations

import asyncio
import sys

import orjson

from canaryd.analysis.outbound import outbound_session
from canaryd.analysis.providers import PROVIDERS, ProviderError, ProviderSettings
from canaryd.model.providers import parse_metric_template


async def main(cases: list[dict[str, object]]) -> None:
    async with outbound_session() as session:
        for case in cases:
            provider = {"type": case["type"], "address": case["address"], "secretRef": {"name": "s"}}
            query = str(case["query"])
            template = parse_metric_template({"spec": {"provider": provider, "query": query}})
            secrets = case["secrets"]
            assert isinstance(secrets, dict)
            try:
                value = await PROVIDERS[str(case["type"])].query(session, template, query, secrets,
                                                                 ProviderSettings(timeout=5.0))
                print(orjson.dumps({"value": value}).decode(), flush=True)
            except ProviderError as e:
                print(orjson.dumps({"error": str(e)}).decode(), flush=True)


if __name__ == "__main__":
    asyncio.run(main(orjson.loads(sys.argv[1])))
