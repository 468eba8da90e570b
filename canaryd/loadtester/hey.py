"""The built-in ``hey``: the load generator Flagger's tutorials call, on aiohttp, so no Go binary is needed.

``-c`` workers each send their share of ``-n`` requests (or requests until ``-z`` has passed), at most
``-q`` per second each; the summary has hey's layout. Proxy variables (``HTTP_PROXY``, ``NO_PROXY``) are
honoured. The load tester runs it as a child process (``python -m canaryd.loadtester.hey``) so a heavy
run never slows the API that Flagger's gates poll, and so the per-command timeout can kill it.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from canaryd.loadtester.heyflags import USAGE, HeyOptions, HeyUsageError, parse_hey_args

USER_AGENT = "hey/0.0.1"
_CHUNK = 64 * 1024


@dataclass
class Report:
    """What a run measured: latencies of answered requests, status codes, error texts, bytes read."""

    started: float = 0.0
    total: float = 0.0
    latencies: list[float] = field(default_factory=list)
    status_codes: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    size_total: int = 0

    @property
    def count(self) -> int:
        return len(self.latencies) + sum(self.errors.values())


def _headers(opts: HeyOptions) -> dict[str, str]:
    headers: dict[str, str] = {"Content-Type": opts.content_type}
    for key, value in opts.headers:
        headers[key] = value
    ua = headers.get("User-Agent")
    headers["User-Agent"] = f"{ua} {USER_AGENT}" if ua else USER_AGENT
    if opts.host:
        headers["Host"] = opts.host
    return headers


def _error_text(opts: HeyOptions, err: BaseException) -> str:
    detail = "timeout" if isinstance(err, TimeoutError) else (str(err) or type(err).__name__)
    return f'{opts.method.capitalize()} "{opts.url}": {detail}'


async def _one(session: aiohttp.ClientSession, opts: HeyOptions, headers: dict[str, str],
               proxy: str | None, report: Report) -> None:
    began = time.monotonic()
    try:
        async with session.request(opts.method, opts.url, headers=headers, data=opts.body or None,
                                   proxy=proxy, allow_redirects=not opts.disable_redirects) as resp:
            size = 0
            async for chunk in resp.content.iter_chunked(_CHUNK):
                size += len(chunk)
            report.latencies.append(time.monotonic() - began)
            report.status_codes[resp.status] += 1
            report.size_total += size
    except (aiohttp.ClientError, TimeoutError, OSError) as err:
        report.errors[_error_text(opts, err)] += 1


async def _worker(session: aiohttp.ClientSession, opts: HeyOptions, headers: dict[str, str],
                  proxy: str | None, stop: asyncio.Event, report: Report) -> None:
    interval = 1.0 / opts.qps if opts.qps > 0 else 0.0
    next_at = time.monotonic()
    for _ in range(opts.per_worker):
        if interval:
            # a ticker: one request per interval, missed ticks dropped (not sent in a burst)
            next_at = max(next_at + interval, time.monotonic())
            delay = next_at - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    pass
        if stop.is_set():
            return
        await _one(session, opts, headers, proxy, report)


async def run(opts: HeyOptions) -> Report:
    """Send the load ``opts`` describes and measure it. Requests in flight at the ``-z`` deadline
    complete (bounded by ``-t``), as in hey."""
    report = Report(started=time.monotonic())
    stop = asyncio.Event()
    # hey skips TLS verification (InsecureSkipVerify): load tests often target self-signed endpoints
    connector = aiohttp.TCPConnector(limit=opts.concurrency, force_close=opts.disable_keepalive, ssl=False)
    timeout = aiohttp.ClientTimeout(total=opts.timeout or None)
    proxy = None
    if opts.proxy:
        proxy = opts.proxy if "://" in opts.proxy else f"http://{opts.proxy}"
    headers = _headers(opts)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=True,
                                     auto_decompress=not opts.disable_compression) as session:
        workers = [asyncio.create_task(_worker(session, opts, headers, proxy, stop, report))
                   for _ in range(opts.concurrency)]
        try:
            if opts.duration > 0:
                await asyncio.wait(workers, timeout=opts.duration)
                stop.set()
            await asyncio.gather(*workers)
        finally:
            stop.set()
            for w in workers:
                w.cancel()
    report.total = time.monotonic() - report.started
    return report


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(report: Report) -> str:
    """hey's text summary: Summary, histogram, latency distribution, status codes, errors."""
    lats = sorted(report.latencies)
    total = report.total
    rps = report.count / total if total > 0 else 0.0
    fastest = lats[0] if lats else 0.0
    slowest = lats[-1] if lats else 0.0
    average = sum(lats) / len(lats) if lats else 0.0
    lines = [
        "",
        "Summary:",
        f"  Total:\t{total:.4f} secs",
        f"  Slowest:\t{slowest:.4f} secs",
        f"  Fastest:\t{fastest:.4f} secs",
        f"  Average:\t{average:.4f} secs",
        f"  Requests/sec:\t{rps:.4f}",
        "  ",
        f"  Total data:\t{report.size_total} bytes",
        f"  Size/request:\t{report.size_total // len(lats) if lats else 0} bytes",
        "",
    ]
    if lats:
        lines += ["Response time histogram:", *_histogram(lats), "", "", "Latency distribution:"]
        lines += [f"  {p}% in {_quantile(lats, p / 100):.4f} secs" for p in (10, 25, 50, 75, 90, 95, 99)]
        lines.append("")
    lines += ["Status code distribution:"]
    lines += [f"  [{code}]\t{n} responses" for code, n in sorted(report.status_codes.items())]
    if report.errors:
        lines += ["", "Error distribution:"]
        lines += [f"  [{n}]\t{text}" for text, n in report.errors.most_common()]
    return "\n".join(lines) + "\n"


def _histogram(lats: list[float]) -> list[str]:
    buckets = 10
    low, high = lats[0], lats[-1]
    step = (high - low) / buckets
    marks = [low + step * i for i in range(buckets)] + [high]
    counts = [0] * len(marks)
    i = 0
    for lat in lats:
        while i < len(marks) - 1 and lat > marks[i]:
            i += 1
        counts[i] += 1
    widest = max(counts) or 1
    return [f"  {mark:.3f} [{n}]\t|{'■' * (n * 40 // widest)}" for mark, n in zip(marks, counts, strict=True)]


def main(argv: list[str] | None = None) -> int:
    """``python -m canaryd.loadtester.hey [options...] <url>``: exit 0 after a run (even with errors,
    as hey), 2 on a usage error."""
    args = sys.argv[1:] if argv is None else argv
    try:
        opts = parse_hey_args(args)
    except HeyUsageError as err:
        sys.stderr.write(f"{err}\n\n{USAGE}")
        return 2
    for note in opts.notes:
        sys.stderr.write(f"hey: {note}\n")
    report = asyncio.run(run(opts))
    sys.stdout.write(summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
