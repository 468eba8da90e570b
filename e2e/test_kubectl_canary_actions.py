"""``kubectl canary abort|pause|promote`` and ``history`` on the bed against a real canaryd: the CLI writes
the request, follows the Canary until canaryd answers its id, prints the result and exits 0 done,
1 refused or ignored; the run history then names the aborted run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from canaryd.demo.run import IMAGE, tutorial_objects
from e2e.operator import ROOT, Operator

SCRIPT = shutil.which("kubectl-canary") or str(Path(sys.executable).parent / "kubectl-canary")


def plugin(bed: Any, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``kubectl canary ARGS`` (this checkout's code) with the bed's admin kubeconfig."""
    env = {**os.environ, "KUBECONFIG": bed.kubeconfig,
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
           "PATH": f"{Path(SCRIPT).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([bed.kubectl_path, "canary", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def status(bed: Any, ns: str, path: str) -> str:
    return str(bed.kubectl("-n", ns, "get", "canaries.flagger.app", "podinfo",
                           "-o", f"jsonpath={{.status.{path}}}").stdout)


def test_abort_then_refused_and_ignored_requests_then_history(bed: Any, namespace: str,
                                                                operator: Operator) -> None:
    ns = namespace
    bed.apply(yaml.safe_dump_all(tutorial_objects(ns)))
    got = plugin(bed, "wait", "podinfo", "-n", ns, "--timeout", "90s")
    assert got.returncode == 0, (got.stdout, got.stderr)
    first = status(bed, ns, "lastAppliedSpec")
    bed.kubectl("-n", ns, "set", "image", "deployment/podinfo", f"podinfod={IMAGE}:6.0.1")
    deadline = time.monotonic() + 90
    while not (status(bed, ns, "phase") == "Progressing" and status(bed, ns, "lastAppliedSpec") != first):
        assert time.monotonic() < deadline, status(bed, ns, "phase")
        time.sleep(0.2)

    # a request naming another revision than the run's: ignored (exit 1), the run goes on
    got = plugin(bed, "promote", "podinfo", "-n", ns, "--revision", first, "--timeout", "60s")
    assert got.returncode == 1, (got.stdout, got.stderr)
    assert "promote ignored" in got.stderr, got.stderr

    got = plugin(bed, "abort", "podinfo", "-n", ns, "--timeout", "60s", "-o", "json")
    assert got.returncode == 0, (got.stdout, got.stderr)
    answer = json.loads(got.stdout)
    assert (answer["action"], answer["result"], answer["exitCode"]) == ("abort", "done", 0)
    assert status(bed, ns, "lastRequest.id") == answer["id"]
    assert status(bed, ns, "phase") == "Failed"

    # nothing runs any more: pause is refused with the reason
    got = plugin(bed, "pause", "podinfo", "-n", ns, "--timeout", "60s")
    assert got.returncode == 1 and "pause refused" in got.stderr, (got.stdout, got.stderr)

    got = plugin(bed, "history", "podinfo", "-n", ns)
    assert got.returncode == 0, got.stderr
    header, newest, *_ = got.stdout.splitlines()
    assert header.split()[:2] == ["REVISION", "IMAGE"]
    assert f"{IMAGE}:6.0.1" in newest and "aborted" in newest, got.stdout
