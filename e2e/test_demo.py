"""``canaryd demo`` end to end on the session's bed (``--bed-dir``, in the test's namespace): it exits 0
after a promoted run and a rolled-back run shown live (weights, checks with values, Events), prints how to
use the bed, and leaves canaryd running (stopped here by its pid file). About 55 s."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from e2e.operator import ROOT


def test_demo_shows_a_promotion_and_a_rollback_and_leaves_canaryd_running(bed: Any, namespace: str) -> None:
    name = f"canaryd-demo-{namespace}"
    try:
        got = subprocess.run([sys.executable, "-m", "canaryd", "demo", "--bed-dir", str(bed.dir),
                              "--namespace", namespace], cwd=ROOT, capture_output=True, text=True,
                             timeout=170, check=False)
        out = got.stdout
        assert got.returncode == 0, f"{out[-3000:]}\n{got.stderr[-2000:]}"
        assert f"Reusing the bed running in {bed.dir}" in out
        ns = namespace
        in_order = [f"Advance podinfo.{ns} canary weight {w}" for w in (10, 20, 30, 40, 50)] + [
            f"Promotion completed! Scaling down podinfo.{ns}",
            f"Halt podinfo.{ns} advancement success rate",
            f"Rolling back podinfo.{ns} failed checks threshold reached 5",
            f"Canary failed! Scaling down podinfo.{ns}",
            f"--kubeconfig={bed.kubeconfig} -n {ns} get canaries",
        ]
        positions = [out.find(text) for text in in_order]
        shown = list(zip(in_order, positions, strict=True))
        assert -1 not in positions and positions == sorted(positions), shown
        assert "Succeeded    weight   0%" in out and "Failed       weight   0%" in out
        assert "request-success-rate 100.00% (>= 99%: ok)" in out
        assert "(>= 99%: FAIL)" in out
        assert bed.procs.running(name), "the demo should leave canaryd running"
    finally:
        bed.procs.stop(name)
