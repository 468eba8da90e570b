"""``kubectl canary`` on the bed, as a person and a CI job use it: canaryd runs for the test's namespace
(its own ServiceAccount), the demo's short tutorial Canary (2 s steps to 50 %) is applied, and the
plugin — run through the bed's kubectl, which finds ``kubectl-canary`` on PATH — lists it, shows it
piped, follows it live and waits for a revision: exit 0 promoted, 1 rolled back (reason on stderr),
2 timed out, 3 not found or an image the target does not run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from canaryd.demo.run import IMAGE, tutorial_objects
from e2e.operator import Operator

SCRIPT = shutil.which("kubectl-canary") or str(Path(sys.executable).parent / "kubectl-canary")


def plugin(bed: Any, *args: str, timeout: float = 200) -> subprocess.CompletedProcess[str]:
    """``kubectl canary ARGS`` with the bed's admin kubeconfig (the user's credentials)."""
    env = {**os.environ, "KUBECONFIG": bed.kubeconfig,
           "PATH": f"{Path(SCRIPT).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([bed.kubectl_path, "canary", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def read_lines(proc: subprocess.Popen[str], into: list[str]) -> None:
    """Collect ``proc``'s stdout line by line as it prints (a thread: the test polls ``into``)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        into.append(line)


def start_tutorial(bed: Any, ns: str) -> None:
    """The demo's objects in ``ns``, then ``wait`` for the first revision: canaryd initialises it, which
    counts as promoted (exit 0)."""
    bed.apply(yaml.safe_dump_all(tutorial_objects(ns)))
    got = plugin(bed, "wait", "podinfo", "-n", ns, "--timeout", "90s")
    assert got.returncode == 0, (got.stdout, got.stderr)


def test_list_get_and_wait_for_a_promoted_revision(bed: Any, namespace: str, operator: Operator) -> None:
    ns = namespace
    assert Path(SCRIPT).exists(), "pip install -e . installs the kubectl-canary script"
    start_tutorial(bed, ns)
    listed = plugin(bed, "list", "-n", ns)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["NAME", "STATUS", "WEIGHT", "FAILED", "CHECKS"]
    assert row.split()[:4] == ["podinfo", "Initialized", "0", "0/5"]
    every = plugin(bed, "list", "-A", "-o", "json")
    assert any(i["namespace"] == ns and i["name"] == "podinfo" for i in yaml.safe_load(every.stdout)["items"])

    env = {**os.environ, "KUBECONFIG": bed.kubeconfig}
    done = f"Promotion completed! Scaling down podinfo.{ns}"
    with subprocess.Popen([SCRIPT, "get", "podinfo", "-w", "-n", ns], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as live:
        printed: list[str] = []
        reader = threading.Thread(target=read_lines, args=(live, printed), daemon=True)
        reader.start()
        try:
            bed.kubectl("-n", ns, "set", "image", "deployment/podinfo", f"podinfod={IMAGE}:6.0.1")
            started = time.monotonic()
            got = plugin(bed, "wait", "podinfo", "-n", ns, "--revision", f"{IMAGE}:6.0.1", "--timeout", "3m")
            took = time.monotonic() - started
            # the promotion's Event follows the Succeeded status wait returned on: let get -w print it
            deadline = time.monotonic() + 30
            while not any(done in line for line in printed) and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            live.terminate()
        reader.join(timeout=10)
        rest, _ = live.communicate(timeout=10)
    watched = "".join(printed) + rest
    assert got.returncode == 0, (got.stdout, got.stderr)
    lines = got.stdout.splitlines()
    assert lines[0].startswith(f"waiting for canary {ns}/podinfo revision cd1:"), lines
    # wait starts (a Python process behind kubectl) after the image change: on a loaded machine the run may be
    # past its first step by then, so any step's progress line will do (get -w, started before, sees 10 %)
    assert any(line.startswith("Progressing weight ") for line in lines), lines
    assert lines[-1].endswith("promoted"), lines
    print(f"wait returned 0 after {took:.1f}s")
    # piped, get -w prints one plain line per change (no escape codes) and each Event once
    assert "\x1b[" not in watched
    weights = [int(line.split("weight")[1].split("%")[0]) for line in watched.splitlines()
               if "Progressing" in line and "weight" in line and "event" not in line]
    assert 10 in weights and weights == sorted(weights), watched
    assert f"Advance podinfo.{ns} canary weight 50" in watched
    assert done in watched

    shown = plugin(bed, "get", "podinfo", "-n", ns)
    assert shown.returncode == 0 and "\x1b[" not in shown.stdout
    assert shown.stdout.splitlines()[0].startswith(f"Canary {ns}/podinfo   phase Succeeded")
    assert f"Promotion completed! Scaling down podinfo.{ns}" in shown.stdout
    as_json = yaml.safe_load(plugin(bed, "get", "podinfo", "-n", ns, "-o", "json").stdout)
    assert (as_json["phase"], as_json["weight"]) == ("Succeeded", 0)


def test_wait_exit_codes_rolled_back_timeout_and_not_found(bed: Any, namespace: str,
                                                           operator: Operator) -> None:
    ns = namespace
    start_tutorial(bed, ns)
    missing = plugin(bed, "wait", "nope", "-n", ns, "--timeout", "10s")
    assert (missing.returncode, missing.stderr.strip()) == (
        3, f"kubectl canary wait: canary {ns}/nope not found")
    other = plugin(bed, "wait", "podinfo", "-n", ns, "--revision", f"{IMAGE}:9.9.9")
    assert other.returncode == 3 and "is not the one Deployment podinfo runs now" in other.stderr

    # the new revision answers half its requests with 500: 5 failed checks roll it back
    bed.kubectl("-n", ns, "set", "env", "deployment/podinfo", "BED_ERROR_PERCENT=50")
    bed.kubectl("-n", ns, "set", "image", "deployment/podinfo", f"podinfod={IMAGE}:6.0.2")
    short = plugin(bed, "wait", "podinfo", "-n", ns, "--timeout", "1s", "-o", "json")
    assert short.returncode == 2, (short.stdout, short.stderr)
    assert yaml.safe_load(short.stdout)["result"] == "timeout"
    failed = plugin(bed, "wait", "podinfo", "-n", ns, "--revision", ":6.0.2", "--timeout", "3m")
    assert failed.returncode == 1, (failed.stdout, failed.stderr)
    assert "rolled back:" in failed.stderr and "request-success-rate" in failed.stderr, failed.stderr
    # asked again after the end, the answer is the same at once
    again = plugin(bed, "wait", "podinfo", "-n", ns, "--timeout", "10s")
    assert again.returncode == 1
