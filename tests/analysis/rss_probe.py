"""Runs one real outbound call of canaryd in a fresh process and reports its peak memory, so a test can
show that a huge answer does not grow canaryd (tests/analysis/test_memory.py).

    python3 -m tests.analysis.rss_probe prometheus|webhook|notify URL [canaryd run flags…]

Settings come from canaryd's own command line (defaults: ``--max-metrics-answer-bytes 10Mi``,
``--max-webhook-answer-bytes 64Ki``). Prints one JSON line: the check's message and the process's
resident memory just before the call and its peak during the call (MiB): the kernel's peak (VmHWM) is
reset before the call (``/proc/self/clear_refs``), so the one-off cost of importing and compiling modules
at start cannot hide what the call itself adds.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
import orjson

from canaryd.analysis.checks import default_registry, run_checks
from canaryd.analysis.webhooks import call_webhook
from canaryd.cli import build_parser, settings_from_args
from canaryd.model.spec import WebhookSpec
from canaryd.notify.sender import post_json

from .specs import canary, metric


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise LookupError(field)


def reset_peak() -> float:
    """Start a new peak measurement and return the resident memory now."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mib("VmRSS")


def peak_mib() -> float:
    return _status_mib("VmHWM")


async def probe(kind: str, url: str, flags: list[str]) -> dict[str, object]:
    settings = settings_from_args(build_parser().parse_args(["run", *flags]))
    async with aiohttp.ClientSession() as session:
        before = reset_peak()
        if kind == "prometheus":
            spec = canary(metric("q", hi=100, query="up"), metrics_server=url)
            (result,) = await run_checks(spec, session=session, metrics_server=settings.metrics_server,
                                         timeout=settings.metrics_query_timeout, registry=default_registry(),
                                         max_answer_bytes=settings.max_metrics_answer_bytes)
            message = result.message
        elif kind == "webhook":
            hook = WebhookSpec(name="gate", url=url, type="confirm-rollout", timeout_seconds=60)
            message = (await call_webhook(session, hook, {"name": "x"},
                                          max_answer_bytes=settings.max_webhook_answer_bytes)).message
        else:
            message = await post_json(session, url, {"text": "x"}, timeout_seconds=60,
                                      max_answer_bytes=settings.max_webhook_answer_bytes) or ""
    return {"message": message, "before_mib": round(before, 1), "peak_mib": round(peak_mib(), 1)}


def main() -> int:
    kind, url, *flags = sys.argv[1:]
    print(orjson.dumps(asyncio.run(probe(kind, url, flags))).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
