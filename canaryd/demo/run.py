"""The demo: bring the test bed up (building Kubernetes the first time), run canaryd on it under its own
ServiceAccount, apply the tutorial's podinfo Canary with short intervals, then show a promoted run and a
rolled-back run live. Every wait is bounded; any failure ends with a one-line reason and exit code 1.
The bed and canaryd keep running afterwards; ``canaryd demo --down`` stops both."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from canaryd.demo.view import Progress, new_events, progress_of, render

if TYPE_CHECKING:
    from e2e.bed import Bed

ROOT = Path(__file__).resolve().parents[2]  # the checkout, when canaryd runs from one
BUILD_NOTE = ("The first start builds Kubernetes v1.36 (kube-apiserver, controller-manager, scheduler, "
              "kubectl), etcd and kwok\nfrom the Go module proxy: about 13 minutes on 2 cores, measured cold "
              "(Kubernetes 8m40s, etcd 1m38s, kwok 2m32s).\nLater starts take about 15 seconds.")
IMAGE = "ghcr.io/stefanprodan/podinfo"
RUN_TIMEOUT = 180.0
POLL = 0.5
CLOSING_EVENTS = {"Initialized": "Initialization done!", "Succeeded": "Promotion completed!",
                  "Failed": "Canary failed!"}  # the Event that closes each final phase
CLOSING_GRACE = 30.0  # seconds to wait for that Event after the phase


class DemoError(Exception):
    """A step of the demo failed; the message says which and why."""


def say(text: str = "") -> None:
    print(text, flush=True)


def import_bed() -> None:
    """Make the checkout's ``e2e`` package importable, or explain why the demo cannot run."""
    if (ROOT / "e2e" / "bed").is_dir() and str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        import e2e.bed  # noqa: F401
    except ImportError as err:
        raise DemoError(
            f"the demo runs on the test bed in the repository's e2e/ directory, which is not importable "
            f"here ({err}).\nRun it from a checkout: git clone <canaryd repository> && cd canaryd && "
            "pip install -e . && canaryd demo") from None


def binaries_cached() -> bool:
    from e2e.bed import versions

    return all((versions.comp_dir(c, v) / ".complete").exists() for c, v in versions.BUILT.items())


def kubectl_line(bed: Bed, *args: str) -> str:
    return " ".join([bed.kubectl_path, f"--kubeconfig={bed.kubeconfig}", *args])


def run_kubectl(bed: Bed, *args: str) -> None:
    """Run a kubectl command the user would type, showing it first."""
    say(f"\n$ kubectl {' '.join(args)}")
    got = bed.kubectl(*args, check=False)
    if got.returncode != 0:
        raise DemoError(f"kubectl {' '.join(args)} failed: {got.stderr.strip()}")
    if got.stdout.strip():
        say(got.stdout.rstrip())


def wait(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise DemoError(f"timed out after {seconds:g}s waiting for {what}")


def start_bed(bed_dir: Path) -> Bed:
    import logging

    from e2e.bed import Bed

    bed = Bed(bed_dir)
    if bed.state and bed.procs.running("apiserver"):
        say(f"Reusing the bed running in {bed_dir}.")
        return bed
    if binaries_cached():
        say("Kubernetes, etcd and kwok are already built (~/.cache/canaryd-bed); the bed starts in ~15 s.")
    else:
        say(BUILD_NOTE)
        say("Building now (progress below).")
    logging.basicConfig(level=logging.INFO, format="  bed: %(message)s", stream=sys.stdout)
    logging.getLogger("e2e.bed").setLevel(logging.INFO)
    started = time.monotonic()
    bed.up()
    say(f"Bed up in {time.monotonic() - started:.0f}s ({bed_dir}).")
    return bed


def fresh_namespace(bed: Bed, namespace: str) -> None:
    if bed.kubectl("get", "namespace", namespace, check=False).returncode == 0:
        say(f"Deleting namespace {namespace} left by an earlier demo …")
        bed.kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=90s", timeout=120)
    bed.kubectl("create", "namespace", namespace)
    bed.kubectl("label", "namespace", namespace, "istio-injection=enabled")


def proc_name(namespace: str) -> str:
    return f"canaryd-demo-{namespace}"


def start_canaryd(bed: Bed, namespace: str) -> int:
    """canaryd as it runs in a cluster: its ServiceAccount and RBAC from manifests/, leader election on;
    in-cluster names reach the mesh simulator through its proxy for ``namespace``. Returns the HTTP port."""
    from e2e.bed.procs import free_port
    from e2e.operator import grant_leases, install_rbac, mesh_proxy

    kubeconfig = install_rbac(bed)
    grant_leases(bed, namespace)  # it elects in the demo's namespace: the manifests' Lease Role, there
    name = proc_name(namespace)
    bed.procs.stop(name)  # one from an earlier demo in this namespace
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    proxy = mesh_proxy(bed.mesh_url, namespace)
    if proxy:
        env.update(HTTP_PROXY=proxy, http_proxy=proxy, NO_PROXY="127.0.0.1,localhost",
                   no_proxy="127.0.0.1,localhost")
    args = [sys.executable, "-m", "canaryd", "run", "--kubeconfig", kubeconfig, "--namespace", namespace,
            "--metrics-server", str(bed.prometheus_url), "--host", "127.0.0.1", "--port", str(port),
            "--leader-elect", f"--leader-election-namespace={namespace}", "--user-agent", "canaryd/demo"]
    bed.procs.start(name, args, env=env, cwd=ROOT)

    def ready() -> bool:
        if not bed.procs.running(name):
            raise DemoError(f"canaryd exited at start; its log:\n{log_tail(bed, namespace)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    wait(ready, 60, "canaryd's /readyz")
    record = bed.procs.record(name)
    say(f"canaryd is running (pid {record.pid if record else '?'}, http://127.0.0.1:{port}/metrics, "
        f"log {bed.procs.log_path(name)}).")
    return port


def log_tail(bed: Bed, namespace: str, lines: int = 15) -> str:
    from e2e.bed.procs import tail

    return tail(bed.procs.log_path(proc_name(namespace)), lines)


def tutorial_objects(namespace: str) -> list[dict[str, Any]]:
    """manifests/examples/ with the demo's changes: the test's namespace; 2 s steps of 10 % up to 50 %,
    threshold 5, checks over 10 s windows (the bed's Prometheus scrapes every second); no gateway/hosts and
    no load-test webhook (the mesh simulator sends background traffic to podinfo instead)."""
    objs: list[dict[str, Any]] = []
    for name in ("podinfo-deployment.yaml", "podinfo-hpa.yaml", "podinfo-canary.yaml"):
        obj = copy.deepcopy(yaml.safe_load((ROOT / "manifests" / "examples" / name).read_text()))
        obj["metadata"]["namespace"] = namespace
        objs.append(obj)
    canary = objs[-1]
    canary["spec"]["service"] = {"port": 9898}
    analysis = canary["spec"]["analysis"]
    analysis.update(interval="2s", threshold=5, stepWeight=10, maxWeight=50)
    analysis.pop("webhooks", None)
    for metric in analysis["metrics"]:
        metric["interval"] = "10s"
    return objs


def watch_run(bed: Bed, namespace: str, until: tuple[str, ...], refuse: tuple[str, ...],
              seen: dict[str, int], seconds: float = RUN_TIMEOUT) -> Progress:
    """Print the run live until the Canary's phase is in ``until``; a phase in ``refuse`` is a failure."""
    start = time.monotonic()
    last: tuple[Any, ...] | None = None
    name = proc_name(namespace)
    printed: list[str] = []
    ended: tuple[Progress, float] | None = None
    while time.monotonic() - start < seconds:
        if not bed.procs.running(name):
            raise DemoError(f"canaryd stopped during the run; its log:\n{log_tail(bed, namespace)}")
        canary = bed.kubectl_json("-n", namespace, "get", "canary", "podinfo")
        events = bed.kubectl_json("-n", namespace, "get", "events",
                                  "--field-selector=involvedObject.kind=Canary").get("items", [])
        for line in new_events(seen, events):
            say(line)
            printed.append(line)
        if ended is not None:
            # canaryd writes the phase before the run's last Events: show those before moving on
            done, at = ended
            closing = CLOSING_EVENTS.get(done.phase or "", "")
            if any(closing in line for line in printed) or time.monotonic() - at > CLOSING_GRACE:
                return done
            time.sleep(POLL)
            continue
        progress = progress_of(canary)
        if progress.key() != last:
            say(render(progress, time.monotonic() - start))
            last = progress.key()
        if progress.phase in until:
            ended = (progress, time.monotonic())
            continue
        if progress.phase in refuse:
            raise DemoError(f"the run ended {progress.phase} ({progress.message or 'no message'}); "
                            f"expected {' or '.join(until)}")
        time.sleep(POLL)
    raise DemoError(f"the run did not reach {' or '.join(until)} within {seconds:g}s")


def demo(bed_dir: Path, namespace: str) -> None:
    say("canaryd demo: Flagger's Istio tutorial on a local Kubernetes (etcd, kube-apiserver, "
        "controller-manager, scheduler, kwok nodes), a real Prometheus and a simulated Istio mesh.\n")
    bed = start_bed(bed_dir)
    fresh_namespace(bed, namespace)
    start_canaryd(bed, namespace)
    say(f"\nApplying the tutorial's podinfo Deployment, HPA and Canary in namespace {namespace} "
        "(manifests/examples/, steps shortened to 2 s) …")
    bed.apply(yaml.safe_dump_all(tutorial_objects(namespace)))
    seen: dict[str, int] = {}
    watch_run(bed, namespace, ("Initialized",), ("Failed",), seen, seconds=90)

    say("\n== Run 1: a new image; the checks pass, so traffic moves 10 % every 2 s up to 50 %, "
        "then promotion")
    run_kubectl(bed, "-n", namespace, "set", "image", "deployment/podinfo", f"podinfod={IMAGE}:6.0.1")
    watch_run(bed, namespace, ("Succeeded",), ("Failed",), seen)

    say("\n== Run 2: the new revision answers 50 % of requests with HTTP 500 (the simulator reads "
        "BED_ERROR_PERCENT);\n   each failed check halts the advance, 5 of them roll it back")
    run_kubectl(bed, "-n", namespace, "set", "env", "deployment/podinfo", "BED_ERROR_PERCENT=50")
    run_kubectl(bed, "-n", namespace, "set", "image", "deployment/podinfo", f"podinfod={IMAGE}:6.0.2")
    watch_run(bed, namespace, ("Failed",), ("Succeeded",), seen)

    record = bed.procs.record(proc_name(namespace))
    k = kubectl_line(bed)
    say(f"""
Done: one promotion, one rollback. The bed and canaryd keep running:
  {k} -n {namespace} get canaries,deployments,virtualservices
  {k} -n {namespace} describe canary/podinfo
  {k} -n {namespace} set env deployment/podinfo BED_ERROR_PERCENT-
  {k} -n {namespace} set image deployment/podinfo podinfod={IMAGE}:6.0.3
  canaryd (pid {record.pid if record else '?'}) logs JSON lines to {bed.procs.log_path(proc_name(namespace))}
  Prometheus: {bed.prometheus_url}
Stop everything: canaryd demo --down{'' if bed_dir == default_bed_dir() else f' --bed-dir {bed_dir}'}""")


def default_bed_dir() -> Path:
    return ROOT / ".bed"


def down(bed_dir: Path) -> int:
    from e2e.bed import Bed

    bed = Bed(bed_dir)
    if not bed.state:
        say(f"no bed in {bed_dir}")
        return 0
    bed.down()  # every process recorded in the bed dir, canaryd included
    say(f"stopped the bed in {bed_dir} and canaryd")
    return 0


def main(bed_dir: str | None, namespace: str, stop: bool) -> int:
    try:
        import_bed()
        from e2e.bed import BedError
    except DemoError as err:
        print(f"canaryd demo: {err}", file=sys.stderr)
        return 2
    where = Path(bed_dir) if bed_dir else default_bed_dir()
    try:
        if stop:
            return down(where)
        demo(where, namespace)
        return 0
    except (DemoError, BedError, subprocess.CalledProcessError, subprocess.TimeoutExpired,
            json.JSONDecodeError, OSError) as err:
        detail = err.stderr if isinstance(err, subprocess.CalledProcessError) and err.stderr else ""
        extra = f": {str(detail).strip()}" if detail else ""
        print(f"\ncanaryd demo failed: {err}{extra}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ncanaryd demo interrupted; the bed keeps running (canaryd demo --down stops it)",
              file=sys.stderr)
        return 130
