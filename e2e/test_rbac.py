"""Least privilege, shown rather than claimed: a token of canaryd's ServiceAccount (manifests/rbac/) can
do what canaryd does, cluster-wide, and gets 403 for anything else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from e2e.kubectl import Kubectl

ROOT = Path(__file__).resolve().parents[1]
SA = "system:serviceaccount:canaryd-system:canaryd"


@pytest.fixture
def admin(bed: Any) -> Kubectl:
    k = Kubectl(str(bed.kubeconfig))
    k.ok("apply", "-f", str(ROOT / "manifests" / "namespace.yaml"), "-f", str(ROOT / "manifests" / "rbac"))
    return k


@pytest.fixture
def canaryd(admin: Kubectl, tmp_path: Path) -> Kubectl:
    token = admin.ok("create", "token", "canaryd", "-n", "canaryd-system", "--duration=10m").strip()
    return admin.with_token(token, tmp_path / "canaryd.kubeconfig")


def test_token_is_canaryds_identity(canaryd: Kubectl) -> None:
    out = canaryd.ok("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert out == SA


@pytest.mark.parametrize(
    "args",
    [
        ("get", "canaries.flagger.app", "-A"),
        ("get", "deployments.apps", "-A"),
        ("get", "horizontalpodautoscalers.autoscaling", "-A"),
        ("get", "services,configmaps,secrets", "-A"),
        ("get", "virtualservices.networking.istio.io,destinationrules.networking.istio.io", "-A"),
        ("get", "metrictemplates.flagger.app,alertproviders.flagger.app", "-A"),
    ],
    ids=lambda a: a[1].split(".")[0],
)
def test_can_list_what_canaryd_watches_cluster_wide(canaryd: Kubectl, args: tuple[str, ...]) -> None:
    p = canaryd.run(*args)
    assert p.returncode == 0, p.stderr


def test_can_write_what_canaryd_writes(canaryd: Kubectl, namespace: str) -> None:
    checks = [
        ("create", "deployments.apps"),
        ("patch", "deployments.apps"),
        ("update", "canaries.flagger.app/status"),
        ("patch", "canaries.flagger.app/status"),
        ("update", "canaries.flagger.app/finalizers"),
        ("create", "secrets"),
        ("create", "events"),
        ("create", "events.events.k8s.io"),
        ("update", "virtualservices.networking.istio.io"),
    ]
    for verb, res in checks:
        resource, _, sub = res.partition("/")
        args = ["auth", "can-i", verb, resource, "-n", namespace]
        if sub:
            args += ["--subresource", sub]
        assert canaryd.run(*args).stdout.strip() == "yes", (verb, res)


def test_leases_only_in_its_own_namespace(canaryd: Kubectl, namespace: str) -> None:
    """Leader election's Lease is written in canaryd-system only (a Role there, not a ClusterRole rule)."""
    for verb in ("get", "create", "update"):
        mine = canaryd.run("auth", "can-i", verb, "leases.coordination.k8s.io", "-n", "canaryd-system")
        assert mine.stdout.strip() == "yes", verb
        other = canaryd.run("auth", "can-i", verb, "leases.coordination.k8s.io", "-n", namespace)
        assert other.stdout.strip() == "no", verb
    anywhere = canaryd.run("auth", "can-i", "create", "leases.coordination.k8s.io", "--all-namespaces")
    assert anywhere.stdout.strip() == "no"


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (("delete", "namespace", "{ns}", "--dry-run=server"), 'cannot delete resource "namespaces"'),
        (("get", "--raw", "/api/v1/namespaces/{ns}/pods/x/exec?command=sh"), ""),
        (("get", "pods", "-n", "{ns}"), 'cannot list resource "pods"'),
        (("delete", "deployment", "x", "-n", "{ns}"), 'cannot delete resource "deployments"'),
        (("delete", "canary", "x", "-n", "{ns}"), 'cannot delete resource "canaries"'),
        (("get", "nodes"), 'cannot list resource "nodes"'),
        (("create", "clusterrolebinding", "x", "--clusterrole=cluster-admin", f"--user={SA}"),
         'cannot create resource "clusterrolebindings"'),
    ],
    ids=["delete-namespace", "pods-exec", "list-pods", "delete-deployment", "delete-canary", "nodes",
         "escalate"],
)
def test_refused_outside_its_rules(
    canaryd: Kubectl, namespace: str, args: tuple[str, ...], what: str
) -> None:
    p = canaryd.run(*(a.replace("{ns}", namespace) for a in args))
    assert p.returncode != 0
    # 403 (Forbidden), not 404: refused before the object is even looked up
    assert "forbidden" in p.stderr.lower(), p.stderr
    assert what in p.stderr
