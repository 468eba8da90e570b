"""A real Prometheus (Debian's binary, taken out with ``dpkg -x``) and a tiny Istio-metrics exporter,
both on loopback, for the analysis tests.

The exporter's counters grow linearly with time at fixed rates, so ratios of ``rate()`` (success rate,
histogram quantiles) are exact whatever the scrape timing.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CACHE = Path.home() / ".cache" / "canaryd-bed"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prometheus_binary() -> Path:
    """``$CANARYD_PROMETHEUS``, else the bed's cached binary, else extract Debian's package into
    ``~/.cache/canaryd-bed/prometheus-<version>/`` (the same place the bed uses)."""
    if os.environ.get("CANARYD_PROMETHEUS"):
        return Path(os.environ["CANARYD_PROMETHEUS"])
    found = sorted(glob.glob(str(CACHE / "prometheus-*" / "**" / "bin" / "prometheus"), recursive=True))
    if found:
        return Path(found[-1])
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "prometheus"], cwd=tmp, check=True, capture_output=True)
        deb = next(Path(tmp).glob("prometheus_*.deb"))
        version = deb.name.split("_")[1].split("+")[0]
        dest = CACHE / f"prometheus-{version}"
        staging = Path(tmp) / "x"
        subprocess.run(["dpkg", "-x", str(deb), str(staging)], check=True)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(staging), dest)
            (dest / ".complete").touch()  # the bed's marker (e2e/bed/binaries.py): no second download
    return dest / "usr" / "bin" / "prometheus"


@dataclass(frozen=True)
class Workload:
    """Istio metrics of one destination workload: requests per second and where latencies fall."""

    namespace: str
    name: str
    ok_rps: float
    error_rps: float
    latency_bucket: str  # the smallest ``le`` bucket all observations fall into (milliseconds)


BUCKETS = ("1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000", "+Inf")


class Exporter:
    """``/metrics`` with ``istio_requests_total`` and ``istio_request_duration_milliseconds_bucket``."""

    def __init__(self, workloads: list[Workload]) -> None:
        self.workloads = workloads
        self.started = time.monotonic()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.port = 0

    def text(self) -> str:
        t = time.monotonic() - self.started
        lines = ["# TYPE istio_requests_total counter",
                 "# TYPE istio_request_duration_milliseconds histogram"]
        for w in self.workloads:
            base = (f'reporter="destination",destination_workload_namespace="{w.namespace}",'
                    f'destination_workload="{w.name}"')
            ok, err = 5 + w.ok_rps * t, 5 + w.error_rps * t  # constant 5 = a workload that got traffic once
            lines.append(f'istio_requests_total{{{base},response_code="200"}} {ok}')
            lines.append(f'istio_requests_total{{{base},response_code="500"}} {err}')
            total = ok + err
            reached = False
            for le in BUCKETS:
                reached = reached or le == w.latency_bucket
                lines.append(f'istio_request_duration_milliseconds_bucket{{{base},le="{le}"}} '
                             f"{total if reached else 0}")
            lines.append(f"istio_request_duration_milliseconds_count{{{base}}} {total}")
        return "\n".join(lines) + "\n"

    async def start(self) -> None:
        """Serve from a thread of its own: the tests' event loop only runs while an async test does, and
        an exporter on it would miss Prometheus's scrapes during sync tests — the series would go stale and
        a later test's short window would hold no samples."""
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.text().encode()
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Scrapes every second: not worth a line each."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, name="exporter", daemon=True)
        self.thread.start()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class Prometheus:
    """One Prometheus process scraping the exporter every second; stopped by pid."""

    def __init__(self, scrape_port: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="canaryd-prom-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (self.dir / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: istio\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{scrape_port}']}}]\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(prometheus_binary()), f"--config.file={self.dir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.dir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
             "--storage.tsdb.retention.time=1h", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=open(self.dir / "prometheus.log", "wb"))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


async def wait_until(predicate: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    """Poll ``predicate`` until true; fail with ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            if await predicate():
                return
        except Exception:  # not ready yet (connection refused while starting, no data yet…)
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.2)
