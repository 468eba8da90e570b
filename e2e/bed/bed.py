"""One test bed: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok with a fake node, the
mesh simulator and Prometheus, all on loopback, all in one directory.

Everything needed to find a running bed again is in ``<dir>/bed.json`` and ``<dir>/run/*.pid``, so
``python -m e2e up`` in one process and the tests in another share it, and a killed run is cleaned up
by the next start in the same directory."""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import ssl
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from e2e.bed import components, files, versions
from e2e.bed.audit import AuditEvent, read_events
from e2e.bed.binaries import Binaries, ensure_binaries
from e2e.bed.cluster import Cluster
from e2e.bed.errors import BedError
from e2e.bed.pki import Pki, make_pki
from e2e.bed.procs import Procs, alive, free_port, port_is_free, rss_bytes, start_time, tail

log = logging.getLogger("e2e.bed")

ORDER = ("etcd", "apiserver", "controller-manager", "scheduler", "kwok", "mesh", "prometheus")
NODE_NAMES = ("kwok-node-0",)
# Resources whose watch cache is off, so a watch from a compacted resourceVersion reaches etcd and gets a
# real 410 Gone (the cache would otherwise answer from its window). Not used by canaryd's informers.
DEFAULT_UNCACHED = ("podtemplates",)
ADMIN_AGENT = "canaryd-bed"
# SIGTERM grace before SIGKILL: the API server otherwise waits a long time for its open watches to end
GRACE = {"apiserver": 5.0}
TEMP_PREFIX = "canaryd-bed-"


def reap_orphans(root: Path | None = None) -> list[Path]:
    """Ends the beds whose owner process is gone (a test run killed before its teardown) and removes
    their dirs, so they hold no memory or tmpfs space; returns the dirs reaped."""
    reaped: list[Path] = []
    for d in sorted(Path(root or tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*")):
        try:
            owner = json.loads((d / "bed.json").read_text()).get("owner")
        except (OSError, ValueError):
            continue
        if not owner:
            continue
        pid, started = owner
        if alive(pid) and start_time(pid) == started:
            continue
        Bed(d).down(keep_logs=False)
        reaped.append(d)
    return reaped


class Bed(Cluster):
    """A bed in ``dir``: ``up()`` starts it; ``Bed(dir)`` on a dir with ``bed.json`` attaches to a running one
    (``python -m e2e up`` in one process, the tests in another)."""

    def __init__(self, dir: str | os.PathLike[str], *, uncached: Sequence[str] = DEFAULT_UNCACHED,
                 extra_apiserver_args: Sequence[str] = ()) -> None:
        self.dir = Path(dir).resolve()
        self.procs = Procs(self.dir)
        self.state: dict[str, Any] = {}
        self._uncached = tuple(uncached)
        self._extra_apiserver_args = tuple(extra_apiserver_args)
        if self.state_path.exists():
            self.state = json.loads(self.state_path.read_text())

    # ---- addresses -------------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.dir / "bed.json"

    @property
    def kubeconfig(self) -> str:
        return str(self.dir / "kubeconfig")

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.state['ports']['apiserver']}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.state['ports']['etcd']}"

    @property
    def prometheus_url(self) -> str | None:
        port = self.state["ports"].get("prometheus")
        return f"http://127.0.0.1:{port}" if port and self.state.get("prometheus_enabled") else None

    @property
    def mesh_url(self) -> str | None:
        port = self.state["ports"].get("mesh")
        return f"http://127.0.0.1:{port}" if port and self.state.get("mesh_enabled") else None

    @property
    def audit_log(self) -> Path:
        return self.dir / "audit.log"

    @property
    def prometheus_query_log(self) -> Path:
        return self.dir / "prometheus-query.log"

    @property
    def logs(self) -> Path:
        return self.procs.log_dir

    @property
    def pki(self) -> Pki:
        return Pki(self.dir / "pki")

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(self.state.get("nodes", NODE_NAMES))

    def bins(self) -> Binaries:
        return Binaries(**{k: Path(v) for k, v in self.state["bins"].items()})

    # ---- clients ---------------------------------------------------------------------------------
    @property
    def kubectl_path(self) -> str:
        return str(self.bins().kubectl)

    def ssl_context(self) -> ssl.SSLContext:
        """Verifies the API server and presents the admin client certificate (for raw HTTP in tests)."""
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_crt))
        ctx.load_cert_chain(str(self.pki.admin_crt), str(self.pki.admin_key))
        return ctx

    def audit_events(self, *, username: str | None = None, user_agent_prefix: str | None = None,
                     stage: str | None = "ResponseComplete") -> list[AuditEvent]:
        """The API server's audit log so far (Metadata level: user, user agent, verb, object, code)."""
        return read_events(self.audit_log, username=username, user_agent_prefix=user_agent_prefix,
                           stage=stage)

    def etcd_revision(self) -> int:
        """etcd's current revision (through its JSON gateway)."""
        body = self._etcd("/v3/kv/range", {"key": base64.b64encode(b"/registry/").decode(), "limit": 1})
        return int(body["header"]["revision"])

    def compact_etcd(self) -> int:
        """Compacts etcd up to now, so every older resourceVersion is gone; returns the revision."""
        rev = self.etcd_revision()
        self._etcd("/v3/kv/compaction", {"revision": str(rev), "physical": True})
        return rev

    def _etcd(self, path: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(self.etcd_url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def rss(self) -> dict[str, int]:
        """Resident memory of each running component, in bytes."""
        return {name: rss_bytes(pid) for name, pid in self.procs.pids().items()}

    def status(self) -> dict[str, bool]:
        return {name: self.procs.running(name) for name in ORDER if self.procs.record(name) is not None}

    # ---- whole bed -------------------------------------------------------------------------------
    @classmethod
    def temporary(cls, *, mesh: bool = True, prometheus: bool = True, root: Path | None = None,
                  **kwargs: Any) -> Bed:
        """A bed in a new temp dir (under ``root``) owned by this process: ``reap_orphans()`` ends it if this
        process dies without tearing it down (a killed test run)."""
        bed = cls(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=root), **kwargs)
        bed.up(mesh=mesh, prometheus=prometheus, owner=os.getpid())
        return bed

    def up(self, *, mesh: bool = True, prometheus: bool = True, owner: int | None = None) -> None:
        """Cleans what a previous run left in ``dir``, then starts everything in order, waiting for each.
        ``owner``: the pid whose death makes this bed an orphan (None: it lives until ``down``)."""
        t0 = time.monotonic()
        self._clean_previous()
        bins = ensure_binaries()
        t_bins = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else self.dir
        self.state = {
            "dir": str(self.dir),
            "bins": {k: str(v) for k, v in bins.__dict__.items()},
            "ports": {"etcd": free_port(), "etcd_peer": free_port(), "apiserver": free_port(),
                      "controller-manager": free_port(), "scheduler": free_port(), "mesh": free_port(),
                      "prometheus": free_port()},
            "etcd_data": str(shm / f"canaryd-bed-etcd-{uuid.uuid4().hex[:12]}"),
            "uncached": list(self._uncached),
            "extra_apiserver_args": list(self._extra_apiserver_args),
            "nodes": list(NODE_NAMES),
            "mesh_enabled": False,
            "prometheus_enabled": False,
            "timings": {},
            "owner": [owner, start_time(owner)] if owner else None,
        }
        self._save()
        try:
            make_pki(self.dir / "pki")
            files.write_audit_policy(self.dir / "audit-policy.yaml")
            files.write_admin_kubeconfig(Path(self.kubeconfig), self.api_url, self.pki)
            for name in ("etcd", "apiserver", "controller-manager", "scheduler", "kwok"):
                self.start(name)
            self._create_nodes()
            self._apply_crds()
            self._mark("control-plane", t_bins)
            if mesh:
                self.start("mesh")
            if prometheus:
                self.start("prometheus")
        except BaseException:
            self.down(keep_logs=True)
            raise
        self.state["timings"]["binaries"] = round(t_bins - t0, 2)
        self.state["timings"]["total"] = round(time.monotonic() - t0, 2)
        self.state["rss_bytes_after_start"] = sum(self.rss().values())
        self._save()

    def down(self, *, keep_logs: bool = True) -> None:
        """Ends every recorded process by pid (reverse start order) and removes etcd's tmpfs data."""
        self.procs.stop_all(order=tuple(reversed(ORDER)), grace=GRACE)
        data = self.state.get("etcd_data")
        if data and Path(data).exists():
            shutil.rmtree(data, ignore_errors=True)
        if not keep_logs and self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)

    def _clean_previous(self) -> None:
        """A previous (maybe killed) bed in this dir: end its processes if still ours, drop its data."""
        if self.dir.exists():
            previous = Bed(self.dir)
            previous.down()
            for sub in ("run", "logs", "pki", "prometheus-data", "sa", "kubectl-cache", "kwok-home",
                        "controller-manager-certs", "scheduler-certs", "apiserver-certs"):
                shutil.rmtree(self.dir / sub, ignore_errors=True)
            for f in ("bed.json", "audit.log", "prometheus-query.log"):
                (self.dir / f).unlink(missing_ok=True)

    def _save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.describe(), indent=2) + "\n")
        tmp.replace(self.state_path)

    def describe(self) -> dict[str, Any]:
        """``bed.json``: the state plus every address and path a client needs."""
        out = dict(self.state)
        if "ports" in self.state:
            out.update({
                "kubeconfig": self.kubeconfig,
                "api_url": self.api_url,
                "etcd_url": self.etcd_url,
                "prometheus_url": self.prometheus_url,
                "mesh_url": self.mesh_url,
                "audit_log": str(self.audit_log),
                "prometheus_query_log": str(self.prometheus_query_log),
                "logs": str(self.logs),
                "pki": str(self.pki.dir),
            })
        return out

    def _mark(self, what: str, since: float) -> None:
        self.state["timings"][what] = round(time.monotonic() - since, 2)

    # ---- one component ---------------------------------------------------------------------------
    def start(self, name: str) -> None:
        """Starts one component (same port and data as before) and waits until it is ready."""
        if name not in ORDER:
            raise ValueError(f"unknown component {name!r}; one of {ORDER}")
        if self.procs.running(name):
            return
        t0 = time.monotonic()
        self.procs.stop(name)  # a stale pid file of a dead process
        if name == "mesh" and not components.mesh_available():
            log.warning("mesh simulator: e2e/mesh/__main__.py does not exist yet; not starting it "
                        "(mesh_url is None)")
            return
        port = self.state["ports"].get(name)
        if port is not None and not port_is_free(port):
            raise BedError(name, f"port 127.0.0.1:{port} is taken by another process")
        args, env, cwd = components.command(self, name)
        self.procs.start(name, args, env=env, cwd=cwd)
        self._wait_ready(name)
        if name == "mesh":
            self.state["mesh_enabled"] = True
        if name == "prometheus":
            self.state["prometheus_enabled"] = True
        self._mark(name, t0)
        self._save()
        log.info("%s ready in %.1fs", name, time.monotonic() - t0)

    def stop(self, name: str, *, kill: bool = False) -> None:
        """Ends one component by its pid (SIGTERM, or SIGKILL at once with ``kill``, like a crash); the rest
        keep running. ``start(name)`` brings it back on the same port with the same data."""
        if name not in ORDER:
            raise ValueError(f"unknown component {name!r}; one of {ORDER}")
        self.procs.stop(name, timeout=0.0 if kill else GRACE.get(name, 15.0))

    def _wait_ready(self, name: str, timeout: float = 90.0) -> None:
        self.wait(name, lambda: components.ready(self, name), timeout, "ready")

    def wait(self, name: str, check: Callable[[], bool], timeout: float, what: str) -> None:
        """Polls ``check`` until true; fails fast, with the log tail, if component ``name`` dies meanwhile."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            if self.procs.record(name) is not None and not self.procs.running(name):
                code = self.procs.exit_code(name)
                raise BedError(name, f"exited (code {code}) while waiting for it to be {what}; "
                               f"last lines of {self.procs.log_path(name)}:",
                               tail(self.procs.log_path(name)))
            if check():
                return
            if time.monotonic() > deadline:
                raise BedError(name, f"not {what} after {timeout:.0f}s; last lines of "
                               f"{self.procs.log_path(name)}:", tail(self.procs.log_path(name)))
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    # ---- cluster objects -------------------------------------------------------------------------
    def _create_nodes(self) -> None:
        t0 = time.monotonic()
        for node in self.nodes:
            self.kubectl("apply", "-f", "-", input=json.dumps(files.node_manifest(node)))

        def nodes_ready() -> bool:
            got = self.kubectl("get", "nodes", "-o", "json", check=False)
            if got.returncode != 0:
                return False
            ready = {n["metadata"]["name"] for n in json.loads(got.stdout)["items"]
                     if any(c["type"] == "Ready" and c["status"] == "True"
                            for c in n.get("status", {}).get("conditions", []))
                     and not any(t.get("key", "").startswith("node.kubernetes.io/")
                                 for t in n.get("spec", {}).get("taints", []) or [])}
            return set(self.nodes) <= ready

        self.wait("kwok", nodes_ready, 60, "managing a Ready, untainted node")
        self._mark("nodes", t0)

    def crd_files(self) -> list[Path]:
        crd_dir = versions.checkout_root() / "manifests" / "crd"
        own = sorted(crd_dir.glob("*.yaml")) if crd_dir.is_dir() else []
        # Keptn's KeptnMetric and Analysis: the bed's own stand-ins (e2e/bed/keptn-crds.yaml says why)
        return [*own, self.bins().istio_crds, Path(__file__).with_name("keptn-crds.yaml")]

    def _apply_crds(self) -> None:
        """Applies every CRD file (canaryd's, Istio's, Keptn's) in one kubectl call, then waits for
        Established."""
        t0 = time.monotonic()
        paths = self.crd_files()
        names = [d["metadata"]["name"] for path in paths for d in yaml.safe_load_all(path.read_text())
                 if d and d.get("kind") == "CustomResourceDefinition"]
        got = self.kubectl("apply", "--server-side", "--force-conflicts", f"--field-manager={ADMIN_AGENT}",
                           *[f"--filename={p}" for p in paths], check=False, timeout=120)
        if got.returncode != 0:
            raise BedError("crds", f"kubectl apply failed: {(got.stderr.strip().splitlines() or ['?'])[-1]}",
                           got.stderr)
        if names:
            got = self.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                               *[f"crd/{n}" for n in names], check=False, timeout=90)
            if got.returncode != 0:
                raise BedError("crds", f"not Established: {got.stderr.strip()}")
        self.state["crds"] = names
        self._mark("crds", t0)
