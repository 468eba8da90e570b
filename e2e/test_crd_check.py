"""The CRD check at start, against Flagger v1.44's own Canary CRD (closed status schema) on a bed of its
own (the CRD name canaries.flagger.app is fixed, and the shared bed serves canaryd's): canaryd exits at
once with one line saying how to update the CRDs; after exactly that command it starts and becomes ready.
Without the RBAC rule to read the CRD (Flagger's own ClusterRole has none) canaryd reads the API server's
OpenAPI document instead and says the same. An unreachable API server at start is one line too."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from e2e.bed import Bed
from e2e.flagger_process import ensure_flagger
from e2e.operator import ROOT, Operator, free_port, wait_ready


@pytest.fixture
def own_bed() -> Iterator[Bed]:
    """A bed of its own (API server only): the test replaces the cluster-wide Canary CRD."""
    b = Bed.temporary(mesh=False, prometheus=False)
    try:
        yield b
    finally:
        Bed(b.dir).down(keep_logs=False)


def start_canaryd(kubeconfig: str) -> subprocess.CompletedProcess[str]:
    """A canaryd that is expected to stop at start (bounded by the timeout)."""
    return subprocess.run([sys.executable, "-m", "canaryd", "run", f"--kubeconfig={kubeconfig}",
                           "--host=127.0.0.1", f"--port={free_port()}", "--namespace=default"],
                          capture_output=True, text=True, timeout=90, check=False, cwd=ROOT)


def identities(b: Bed) -> dict[str, str]:
    """Kubeconfigs of canaryd's ServiceAccount (manifests/rbac/) and of one bound to the same ClusterRole
    without its customresourcedefinitions rule (as Flagger's ClusterRole, which has none)."""
    manifests = ROOT / "manifests"
    b.kubectl("apply", "-f", str(manifests / "namespace.yaml"), "-f", str(manifests / "rbac"))
    role = yaml.safe_load((ROOT / "manifests" / "rbac" / "clusterrole.yaml").read_text())
    role["metadata"]["name"] = "canaryd-no-crd-rights"
    role["rules"] = [r for r in role["rules"] if "customresourcedefinitions" not in r["resources"]]
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "canaryd-no-crd-rights"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "canaryd-no-crd-rights"},
               "subjects": [{"kind": "ServiceAccount", "name": "no-crd-rights", "namespace": "default"}]}
    b.apply({"apiVersion": "v1", "kind": "List", "items": [role, binding]})
    return {"canaryd": b.kubeconfig_for_serviceaccount("canaryd-system", "canaryd"),
            "no-crd-rights": b.kubeconfig_for_serviceaccount("default", "no-crd-rights")}


def test_flagger_crd_stops_canaryd_with_the_fix_then_the_fix_works(own_bed: Bed, tmp_path: Path) -> None:
    """With canaryd's RBAC (it reads the CRD) and without the CRD rule (it reads the OpenAPI document):
    the same one line, and after the fix it names both start."""
    flagger_crds = ensure_flagger().parent / "crd.yaml"  # Flagger v1.44.0's artifacts/flagger/crd.yaml
    own_bed.kubectl("replace", "-f", str(flagger_crds))  # as a Flagger install left them
    who = identities(own_bed)
    fixes = set()
    for name, kubeconfig in who.items():
        got = start_canaryd(kubeconfig)
        assert got.returncode == 1, (name, got.stderr)
        lines = got.stderr.splitlines()
        assert len(lines) == 1 and "Traceback" not in got.stderr, (name, got.stderr)
        assert lines[0].startswith("canaryd: the served canaries.flagger.app CRD is not canaryd's"), lines
        assert "checks" in lines[0] and "nextStepAt" in lines[0]
        fixes.add(lines[0].rsplit("update the CRDs: ", 1)[1])
    (fix,) = fixes
    assert fix.startswith("kubectl apply --server-side")

    # exactly the command of the message, run from the repository's root
    crds = str(ROOT / "manifests" / "crd")
    own_bed.kubectl(*[crds if a == "manifests/crd/" else a for a in fix.split()[1:]])
    own_bed.kubectl("wait", "--for=condition=Established", "crd/canaries.flagger.app", "--timeout=60s")
    for name, kubeconfig in who.items():
        op = Operator(kubeconfig=kubeconfig, namespace="default", prometheus_url="http://127.0.0.1:1",
                      proxy=None, log_dir=tmp_path, name=name)
        try:
            op.start()
            wait_ready(op)
        finally:
            op.stop()


def test_unreachable_api_server_is_one_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    config = tmp_path / "kubeconfig"
    config.write_text(f"""apiVersion: v1
kind: Config
current-context: x
clusters: [{{name: c, cluster: {{server: "https://127.0.0.1:{port}", insecure-skip-tls-verify: true}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
""")
    got = start_canaryd(str(config))
    assert got.returncode == 1
    assert got.stderr.startswith("canaryd: cannot reach the API server: ") and got.stderr.count("\n") == 1, \
        got.stderr
