"""The install manifests: ``kubectl apply -k manifests/`` passes the API server's validation (server-side
dry-run against the bed: CRDs, RBAC, the Deployment and the metrics Service), the Deployment is set up as
an operator should be (two replicas with leader election, probes, limits, locked-down container) with
only environment variables canaryd reads, and the tutorial's example app validates too."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"


def rendered(bed: Any, path: Path) -> list[dict[str, Any]]:
    out = bed.kubectl("kustomize", str(path)).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name} in the kustomization: {len(found)}"
    return found[0]


def test_apply_k_passes_server_side_dry_run(bed: Any) -> None:
    got = bed.kubectl("apply", "-k", str(MANIFESTS), "--dry-run=server", check=False)
    assert got.returncode == 0, got.stderr
    for line in ("deployment.apps/canaryd", "service/canaryd",
                 "clusterrole.rbac.authorization.k8s.io/canaryd",
                 "customresourcedefinition.apiextensions.k8s.io/canaries.flagger.app"):
        assert line in got.stdout, got.stdout


def test_deployment_runs_two_locked_down_replicas_with_leader_election(bed: Any) -> None:
    docs = rendered(bed, MANIFESTS)
    dep = by_kind(docs, "Deployment", "canaryd")
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "canaryd"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {c["livenessProbe"]["httpGet"]["port"], c["readinessProbe"]["httpGet"]["port"]} == {"http"}
    assert {"containerPort": 8080, "name": "http", "protocol": "TCP"} in c["ports"]
    assert set(c["resources"]["requests"]) == {"cpu", "memory"} == set(c["resources"]["limits"])
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["CANARYD_LEADER_ELECT"] == "true"
    assert env["CANARYD_METRICS_SERVER"].startswith("http://")
    # every variable set is one canaryd reads (a typo would be silently ignored otherwise)
    sources = "".join(p.read_text() for p in (ROOT / "canaryd").rglob("*.py"))
    unknown = [name for name in env if not re.search(rf"[\"']{name}[\"']", sources)]
    assert unknown == [], f"env vars canaryd does not read: {unknown}"
    svc = by_kind(docs, "Service", "canaryd")
    assert svc["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert svc["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]


def test_deployment_leader_election_flags_parse(bed: Any) -> None:
    """The Deployment's environment gives ``canaryd run`` valid, safe leader-election settings."""
    dep = by_kind(rendered(bed, MANIFESTS), "Deployment", "canaryd")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    code = ("import sys; from canaryd.cli import build_parser, settings_from_args, _leader_problem; "
            "s = settings_from_args(build_parser().parse_args(sys.argv[1:])); "
            "print(s.leader_elect, s.lease_duration, s.renew_deadline, s.retry_period, "
            "repr(_leader_problem(s)))")
    got = subprocess.run([sys.executable, "-c", code, *c["args"]], env={**env, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, check=False, timeout=60)
    assert got.returncode == 0, got.stderr
    assert got.stdout.split() == ["True", "15.0", "10.0", "2.0", "''"]


def test_examples_validate_in_a_namespace(bed: Any, namespace: str) -> None:
    """The tutorial's podinfo Deployment, HPA and Canary, and the load tester its webhook calls
    (``http://flagger-loadtester.test/``: same namespace, as in Flagger's tutorials), moved into the test's
    namespace (server-side dry-run cannot create the ``test`` namespace they name)."""
    docs = [d for d in rendered(bed, MANIFESTS / "examples") if d["kind"] != "Namespace"]
    assert sorted(d["kind"] for d in docs) == ["Canary", "Deployment", "Deployment",
                                               "HorizontalPodAutoscaler", "Role", "RoleBinding", "Secret",
                                               "Service", "ServiceAccount"]
    assert {d["metadata"]["namespace"] for d in docs} == {"test"}
    binding = by_kind(docs, "RoleBinding", "flagger-loadtester")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "flagger-loadtester",
                                    "namespace": "test"}]
    hooks = by_kind(docs, "Canary", "podinfo")["spec"]["analysis"]["webhooks"]
    svc = by_kind(docs, "Service", "flagger-loadtester")
    # the example token of the generated Secret is the one in the webhook URL (README: change both)
    token = base64.b64decode(by_kind(docs, "Secret", "flagger-loadtester-token")["data"]["token"]).decode()
    assert hooks[0]["url"] == f"http://token:{token}@{svc['metadata']['name']}.{svc['metadata']['namespace']}/"
    for d in docs:
        d["metadata"]["namespace"] = namespace
        for subject in d.get("subjects", []):
            subject["namespace"] = namespace
    text = yaml.safe_dump_all(docs)
    got = bed.kubectl("apply", "--dry-run=server", "-f", "-", input=text, check=False)
    assert got.returncode == 0, got.stderr
    for line in ("canary.flagger.app/podinfo created (server dry run)",
                 "deployment.apps/flagger-loadtester created (server dry run)",
                 "service/flagger-loadtester created (server dry run)"):
        assert line in got.stdout, got.stdout


def test_root_kustomization_installs_the_operator_only(bed: Any) -> None:
    """The load tester belongs to the apps' namespace (manifests/examples), never canaryd-system: nothing
    of it is in the root kustomization."""
    names = {(d["kind"], d["metadata"]["name"]) for d in rendered(bed, MANIFESTS)}
    assert not [n for n in names if "loadtester" in n[1]], names


def test_grafana_dashboard_configmap_validates(bed: Any, namespace: str) -> None:
    docs = rendered(bed, MANIFESTS / "grafana")
    (cm,) = docs
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["canaryd-canary.json"])["uid"] == "canaryd-canary"
    got = bed.kubectl("-n", namespace, "apply", "--dry-run=server", "-k", str(MANIFESTS / "grafana"),
                      check=False)
    assert got.returncode == 0, got.stderr
    assert "configmap/canaryd-grafana-dashboard created (server dry run)" in got.stdout, got.stdout


def test_operations_rbac_table_is_the_clusterrole() -> None:
    """docs/operations.md lists exactly the rules of the ClusterRole and of the leader-election Role
    (group, resources, verbs), row by row."""
    roles = [yaml.safe_load((MANIFESTS / "rbac" / "clusterrole.yaml").read_text())]
    roles += [d for d in yaml.safe_load_all((MANIFESTS / "rbac" / "leader-election.yaml").read_text())
              if d and d["kind"] == "Role"]
    rules = {(g, r, tuple(rule["verbs"])) for role in roles for rule in role["rules"]
             for g in rule["apiGroups"] for r in rule["resources"]}
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("## RBAC", 1)[1].split("\n## ", 1)[0]
    documented = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("API group", "---"):
            continue
        groups = ["" if g.strip() == '""' else g.strip() for g in cells[0].split(",")]
        verbs = tuple(v.strip() for v in cells[2].split(","))
        documented |= {(g, r.strip(), verbs) for g in groups for r in cells[1].split(",")}
    assert documented == rules, (f"only in the docs: {documented - rules}; "
                                 f"only in the ClusterRole: {rules - documented}")
