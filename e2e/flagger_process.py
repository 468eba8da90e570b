"""The real Flagger (v1.44.0, built from the Go module proxy into the bed's cache) as a process on the bed,
for the benchmark and the take-over test: started against the bed's admin kubeconfig with
``-mesh-provider=istio`` and the bed's Prometheus, ended by its own pid.

The build is on demand (``e2e/bed/build-bins.sh flagger``, cached with a ``.complete`` marker, never
committed); a failed build raises ``BedError`` with the go command's last lines, never a fallback."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from e2e.bed import versions
from e2e.bed.binaries import BUILD_SCRIPT
from e2e.bed.errors import BedError
from e2e.bed.procs import free_port, terminate
from e2e.operator import json_log, log_messages

FLAGGER_VERSION = "v1.44.0"
# client-go's default User-Agent starts with the binary's name: how the audit log tells Flagger apart
AGENT_PREFIX = "flagger/"


def flagger_dir() -> Path:
    return versions.comp_dir("flagger", FLAGGER_VERSION)


def ensure_flagger() -> Path:
    """Path of the flagger binary, built first when the cache has none (minutes on 2 cores)."""
    out = flagger_dir()
    if not (out / ".complete").exists():
        env = {**os.environ, "FLAGGER_VERSION": FLAGGER_VERSION}
        proc = subprocess.run(["bash", str(BUILD_SCRIPT), "flagger", str(out)], env=env,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not (out / ".complete").exists():
            last = " | ".join(proc.stderr.strip().splitlines()[-3:]) or "(no output)"
            raise BedError(f"flagger {FLAGGER_VERSION}", f"build failed (exit {proc.returncode}): {last}",
                           proc.stderr[-4000:])
    return out / "flagger"


class Flagger:
    """One Flagger process watching every namespace (or one); its JSON log lines are kept in a file."""

    def __init__(self, *, kubeconfig: str, prometheus_url: str, log_dir: Path, namespace: str = "",
                 extra_args: tuple[str, ...] = ()) -> None:
        self.binary = ensure_flagger()
        self.kubeconfig = kubeconfig
        self.prometheus_url = prometheus_url
        self.namespace = namespace
        self.extra_args = extra_args
        self.log_path = log_dir / f"flagger{'-' + namespace if namespace else ''}.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Flagger:
        self.port = free_port()
        cmd = [str(self.binary), f"-kubeconfig={self.kubeconfig}", "-mesh-provider=istio",
               f"-metrics-server={self.prometheus_url}", f"-port={self.port}", "-log-level=info",
               *([f"-namespace={self.namespace}"] if self.namespace else []), *self.extra_args]
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        """Flagger answers /healthz once its informers and HTTP server are up."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return
            if not self.running():
                break
            time.sleep(0.2)
        tail = "\n".join(self.messages()[-20:])
        raise AssertionError(f"flagger not ready within {timeout:g}s; last log lines:\n{tail}")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait (SIGKILL after ``timeout``); returns the exit code."""
        return terminate(self.proc, timeout)

    def logs(self) -> list[dict[str, Any]]:
        return json_log(self.log_path)

    def messages(self) -> list[str]:
        return log_messages(self.logs())
