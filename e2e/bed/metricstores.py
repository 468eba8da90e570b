"""Metric stores other than Prometheus, started on demand as bed extras on loopback: a real InfluxDB
1.8 with Flux and a real Graphite (carbon-cache + graphite-web), each cached like the bed's binaries,
plus a :class:`Feeder` that copies the mesh simulator's request rates (read from the bed's Prometheus)
into them every second for one namespace.

Series written, per workload of the namespace (``total`` and ``errors`` are requests per second over
the last 5 s; ``errors`` are 5xx answers):

- InfluxDB, database ``canaryd``: ``requests,namespace=<ns>,workload=<w> total=<x>,errors=<y>``
- Graphite: ``mesh.<ns>.<w>.total`` and ``mesh.<ns>.<w>.errors``
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from e2e.bed import versions
from e2e.bed.errors import BedError

BUILD_SCRIPT = Path(__file__).with_name("build-bins.sh")
DATABASE = "canaryd"
# graphite-web, graphite-carbon and what they import, unpacked from Debian's packages (dpkg -x: installing
# them would start daemons); run with Debian's own python3, for which the compiled ones are built
GRAPHITE_DEBS = (
    "graphite-web", "graphite-carbon", "python3-whisper", "python3-django", "python3-django-tagging",
    "python3-pyparsing", "python3-simplejson", "python3-tz", "python3-urllib3", "python3-cairocffi",
    "python3-six", "python3-twisted", "python3-cachetools", "python3-zope.interface", "python3-attr",
    "python3-automat", "python3-constantly", "python3-hyperlink", "python3-incremental",
    "python3-typing-extensions", "python3-idna", "python3-asgiref", "python3-sqlparse",
    "python3-cffi-backend", "python3-cffi", "python3-pycparser", "python3-ply", "python3-xcffib",
)
DEBIAN_PYTHON = Path("/usr/bin/python3")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _locked(name: str) -> Any:
    """A file lock in the cache (several pytest-xdist workers may provision at once)."""
    root = versions.cache_root()
    root.mkdir(parents=True, exist_ok=True)
    lock = open(root / f".{name}.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def influxd_binary() -> Path:
    """influxd built from the Go module proxy (build-bins.sh influxdb) into the version-keyed cache."""
    out = versions.comp_dir("influxdb", versions.INFLUXDB_VERSION)
    if not (out / ".complete").exists():
        with _locked(f"influxdb-{versions.INFLUXDB_VERSION}"):
            if not (out / ".complete").exists():
                env = {**os.environ, "INFLUXDB_VERSION": versions.INFLUXDB_VERSION}
                proc = subprocess.run(["bash", str(BUILD_SCRIPT), "influxdb", str(out)], env=env,
                                      capture_output=True, text=True, check=False)
                if proc.returncode != 0 or not (out / ".complete").exists():
                    raise BedError(f"influxdb {versions.INFLUXDB_VERSION}",
                                   f"build failed (exit {proc.returncode}): {proc.stderr[-300:]}",
                                   proc.stderr[-4000:])
    return out / "influxd"


def graphite_root() -> Path:
    """Debian's graphite-web and graphite-carbon with their Python dependencies, unpacked into the cache."""
    out = versions.comp_dir("graphite", versions.GRAPHITE_WEB_VERSION)
    if (out / ".complete").exists():
        return out
    comp = f"graphite-web {versions.GRAPHITE_WEB_VERSION}"
    if not DEBIAN_PYTHON.exists():
        raise BedError(comp, f"{DEBIAN_PYTHON} (Debian's python3, which the packages are for) is missing")
    with _locked(f"graphite-{versions.GRAPHITE_WEB_VERSION}"), \
            tempfile.TemporaryDirectory(prefix="canaryd-bed-graphite-") as tmp:
        if (out / ".complete").exists():
            return out
        got = subprocess.run(["apt-get", "download", *GRAPHITE_DEBS], cwd=tmp, capture_output=True, text=True,
                             check=False)
        if got.returncode != 0:
            raise BedError(comp, f"apt-get download failed: {got.stderr[-300:]}", got.stderr)
        web = sorted(Path(tmp).glob("graphite-web_*.deb"))
        if not web or f"_{versions.GRAPHITE_WEB_VERSION}-" not in web[0].name:
            raise BedError(comp, f"Debian's graphite-web is not {versions.GRAPHITE_WEB_VERSION}: "
                                 f"{[p.name for p in web]} (bump GRAPHITE_WEB_VERSION in versions.py)")
        staging = Path(tmp) / "x"
        for deb in sorted(Path(tmp).glob("*.deb")):
            unpack = subprocess.run(["dpkg", "-x", str(deb), str(staging)], capture_output=True, text=True,
                                    check=False)
            if unpack.returncode != 0:
                raise BedError(comp, f"dpkg -x {deb.name} failed: {unpack.stderr[-300:]}", unpack.stderr)
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), str(out))
        (out / ".complete").touch()
    return out


def _wait_http(url: str, ok: tuple[int, ...], seconds: float, what: str, proc: subprocess.Popen[bytes],
               log: Path) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            raise BedError(what, f"exited with {proc.returncode}: {log.read_text()[-500:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status in ok:
                    return
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BedError(what, f"{url} did not answer within {seconds:g}s: {log.read_text()[-500:]}")
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@dataclass
class InfluxDB:
    """A real influxd (1.8, Flux enabled, no auth) on loopback, data under ``workdir``."""

    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> InfluxDB:
        binary = influxd_binary()
        d = self.workdir
        d.mkdir(parents=True, exist_ok=True)
        conf = d / "influxd.conf"
        conf.write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{free_port()}"\n'
            f'[meta]\n  dir = "{d}/meta"\n'
            f'[data]\n  dir = "{d}/data"\n  wal-dir = "{d}/wal"\n  query-log-enabled = false\n'
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n'
            "  flux-enabled = true\n  log-enabled = false\n"
            "[monitor]\n  store-enabled = false\n[continuous_queries]\n  enabled = false\n")
        log = d / "influxd.log"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([str(binary), "-config", str(conf)], stdout=out, stderr=out,
                                         start_new_session=True)
        _wait_http(f"{self.url}/ping", (204,), 30, "influxd", self.proc, log)
        req = urllib.request.Request(f"{self.url}/query", data=f"q=CREATE DATABASE {DATABASE}".encode(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=5):
            pass
        return self

    def stop(self) -> None:
        _stop(self.proc)

    async def write(self, session: aiohttp.ClientSession, lines: list[str]) -> None:
        async with session.post(f"{self.url}/write", params={"db": DATABASE, "precision": "s"},
                                data="\n".join(lines).encode()) as resp:
            if resp.status != 204:
                raise BedError("influxd", f"write answered {resp.status}: {(await resp.text())[:200]}")


@dataclass
class Graphite:
    """A real carbon-cache (plaintext on ``line_port``, 1 s retention) and graphite-web (``/render``
    through a WSGI server on ``web_port``, a local SQLite database) on loopback."""

    workdir: Path
    line_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self) -> Graphite:
        root = graphite_root()
        d = self.workdir
        storage = d / "storage"
        for sub in ("whisper", "log/webapp", "lists"):
            (storage / sub).mkdir(parents=True, exist_ok=True)
        query_port = free_port()
        (d / "carbon.conf").write_text(
            f"[cache]\nSTORAGE_DIR = {storage}\nLOCAL_DATA_DIR = {storage}/whisper\n"
            f"WHITELISTS_DIR = {storage}/lists\nCONF_DIR = {d}\nLOG_DIR = {storage}/log\nPID_DIR = {d}\n"
            "ENABLE_LOGROTATION = False\nUSER =\nMAX_CACHE_SIZE = inf\nMAX_UPDATES_PER_SECOND = inf\n"
            "MAX_CREATES_PER_MINUTE = inf\nLINE_RECEIVER_INTERFACE = 127.0.0.1\n"
            f"LINE_RECEIVER_PORT = {self.line_port}\nENABLE_UDP_LISTENER = False\n"
            f"PICKLE_RECEIVER_INTERFACE = 127.0.0.1\nPICKLE_RECEIVER_PORT = {free_port()}\n"
            f"CACHE_QUERY_INTERFACE = 127.0.0.1\nCACHE_QUERY_PORT = {query_port}\n"
            "LOG_UPDATES = False\nLOG_CREATES = False\nLOG_LISTENER_CONN_SUCCESS = False\n")
        (d / "storage-schemas.conf").write_text("[all]\npattern = .*\nretentions = 1s:1h\n")
        (d / "bed_graphite_settings.py").write_text(
            'SECRET_KEY = "canaryd-bed-loopback-only"\n'
            f'CARBONLINK_HOSTS = ["127.0.0.1:{query_port}"]\nDEFAULT_CACHE_DURATION = 0\n'
            "LOG_RENDERING_PERFORMANCE = False\nLOG_CACHE_PERFORMANCE = False\n")
        (d / "serve.py").write_text(_SERVE)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(d),
               "PYTHONPATH": f"{root}/usr/lib/python3/dist-packages:{d}",
               "GRAPHITE_STORAGE_DIR": str(storage), "GRAPHITE_SETTINGS_MODULE": "bed_graphite_settings",
               "DJANGO_SETTINGS_MODULE": "graphite.settings"}
        migrate = subprocess.run([str(DEBIAN_PYTHON), "-m", "django", "migrate", "--run-syncdb", "-v0"],
                                 env=env, cwd=d, capture_output=True, text=True, check=False)
        if migrate.returncode != 0:
            raise BedError("graphite-web", f"django migrate failed: {migrate.stderr[-500:]}", migrate.stderr)
        carbon_log, web_log = d / "carbon.log", d / "web.log"
        with open(carbon_log, "wb") as out:
            self.procs.append(subprocess.Popen(
                [str(DEBIAN_PYTHON), str(root / "usr/bin/carbon-cache"), f"--config={d}/carbon.conf",
                 "--nodaemon", "start"], env=env, cwd=d, stdout=out, stderr=out, start_new_session=True))
        with open(web_log, "wb") as out:
            self.procs.append(subprocess.Popen(
                [str(DEBIAN_PYTHON), str(d / "serve.py"), str(self.web_port)], env=env, cwd=d, stdout=out,
                stderr=out, start_new_session=True))
        _wait_http(f"{self.url}/render?target=none&format=json", (200,), 60, "graphite-web", self.procs[1],
                   web_log)
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.line_port), 1):
                break
            if self.procs[0].poll() is not None or time.monotonic() > deadline:
                raise BedError("carbon-cache", f"not listening on {self.line_port}: "
                                               f"{carbon_log.read_text()[-500:]}")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        for proc in self.procs:
            _stop(proc)

    async def write(self, lines: list[str]) -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", self.line_port)
        writer.write(("\n".join(lines) + "\n").encode())
        await writer.drain()
        writer.close()
        await writer.wait_closed()


_SERVE = '''"""graphite-web's WSGI application behind the standard library's threaded WSGI server."""
import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from graphite.wsgi import application


class Threaded(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


make_server("127.0.0.1", int(sys.argv[1]), application, server_class=Threaded,
            handler_class=Quiet).serve_forever()
'''


def _rates_query(namespace: str, errors: bool) -> str:
    code = ', response_code=~"5.*"' if errors else ""
    return (f'sum by (destination_workload) (rate(istio_requests_total{{reporter="destination", '
            f'destination_workload_namespace="{namespace}"{code}}}[5s]))')


@dataclass
class Feeder:
    """Every second: the namespace's request rates from the bed's Prometheus into the stores."""

    prometheus_url: str
    namespace: str
    influxdb: InfluxDB | None = None
    graphite: Graphite | None = None
    written: int = 0  # rounds written (tests wait for the first)
    _task: asyncio.Task[None] | None = None

    async def _rates(self, session: aiohttp.ClientSession, errors: bool) -> dict[str, float]:
        async with session.get(f"{self.prometheus_url}/api/v1/query",
                               params={"query": _rates_query(self.namespace, errors)}) as resp:
            doc = await resp.json()
        return {r["metric"].get("destination_workload", ""): float(r["value"][1])
                for r in doc["data"]["result"]}

    async def _round(self, session: aiohttp.ClientSession) -> None:
        total, errors = await self._rates(session, False), await self._rates(session, True)
        now = int(time.time())
        ns = self.namespace
        if self.influxdb is not None and total:
            await self.influxdb.write(session, [
                f"requests,namespace={ns},workload={w} total={t!r},errors={errors.get(w, 0.0)!r} {now}"
                for w, t in sorted(total.items())])
        if self.graphite is not None and total:
            await self.graphite.write([line for w, t in sorted(total.items()) for line in (
                f"mesh.{ns}.{w}.total {t!r} {now}", f"mesh.{ns}.{w}.errors {errors.get(w, 0.0)!r} {now}")])
        self.written += 1

    async def _loop(self) -> None:
        async with aiohttp.ClientSession(trust_env=False) as session:
            while True:
                with contextlib.suppress(aiohttp.ClientError, KeyError, ValueError, OSError):
                    await self._round(session)
                await asyncio.sleep(1)

    def start(self) -> Feeder:
        self._task = asyncio.create_task(self._loop())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
