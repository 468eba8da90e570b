"""The Helm charts (charts/canaryd, charts/loadtester) with Helm v4 built from the Go module proxy: lint,
templates accepted by the bed's API server (server-side dry run, ServiceMonitor/PodMonitor against
prometheus-operator's CRDs), a wrong-typed value refused naming it, the same RBAC as the kustomize
manifests, and an install whose ServiceAccount and RBAC carry canaryd through a promotion with no 403,
then an upgrade and an uninstall that leaves the CRDs.

kwok pods run nothing, so canaryd runs as a local process with the args and env of the Deployment the
release installed and a token of the release's ServiceAccount."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from canaryd.kube.client import KubeClient
from e2e.bed import binaries
from e2e.bed.waiting import wait_for
from e2e.canaries import canary, create, podinfo, set_image, wait_phase
from e2e.operator import Operator, free_port, mesh_proxy, wait_ready

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "canaryd"
LOADTESTER_CHART = ROOT / "charts" / "loadtester"
CRDS = ("canaries.flagger.app", "metrictemplates.flagger.app", "alertproviders.flagger.app")


class Helm:
    """The cached Helm v4 binary against the bed, with its own config/cache dirs."""

    def __init__(self, binary: Path, kubeconfig: str, home: Path) -> None:
        self.binary = binary
        self.env = {**os.environ, "KUBECONFIG": kubeconfig, "HELM_CONFIG_HOME": str(home / "config"),
                    "HELM_CACHE_HOME": str(home / "cache"), "HELM_DATA_HOME": str(home / "data")}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.binary), *args], capture_output=True, text=True, env=self.env,
                              timeout=180, check=False)

    def ok(self, *args: str) -> str:
        got = self.run(*args)
        assert got.returncode == 0, f"helm {' '.join(args)} failed:\n{got.stderr}"
        return got.stdout

    def template(self, chart: Path, namespace: str, *sets: str,
                 release: str = "canaryd") -> list[dict[str, Any]]:
        out = self.ok("template", release, str(chart), "--namespace", namespace, *sets)
        return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="module")
def helm_binary() -> Path:
    """Helm v4 (e2e/bed/versions.py HELM_VERSION), built into ~/.cache/canaryd-bed the first time."""
    return binaries.helm()


@pytest.fixture
def helm(helm_binary: Path, bed: Any, tmp_path: Path) -> Helm:
    return Helm(helm_binary, str(bed.kubeconfig), tmp_path / "helm")


@pytest.fixture
def offline_helm(helm_binary: Path, tmp_path: Path) -> Helm:
    """Helm for lint/template only (no cluster)."""
    return Helm(helm_binary, str(tmp_path / "no-kubeconfig"), tmp_path / "helm")


@pytest.fixture(scope="module")
def monitoring_crds(bed: Any) -> None:
    """ServiceMonitor and PodMonitor CRDs from prometheus-operator's Go module, on the bed (cluster-scoped,
    served to nobody else's harm; applied server-side so concurrent workers agree)."""
    path = binaries.prometheus_operator_crds()
    bed.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    bed.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                "crd/servicemonitors.monitoring.coreos.com", "crd/podmonitors.monitoring.coreos.com")


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def dry_run(bed: Any, docs: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})
    got: subprocess.CompletedProcess[str] = bed.kubectl("apply", "--dry-run=server", "-f", "-", input=body,
                                                        check=False)
    return got


# --- charts alone --------------------------------------------------------------------------------------


def test_chart_crds_are_the_manifests_crds() -> None:
    """One CRD source: charts/canaryd/crds/ holds byte-identical copies of manifests/crd/*.yaml."""
    chart = {p.name: p.read_bytes() for p in sorted((CHART / "crds").glob("*.yaml"))}
    manifests = {p.name: p.read_bytes() for p in sorted((ROOT / "manifests" / "crd").glob("*.yaml"))}
    assert chart == manifests, "charts/canaryd/crds/ differs: cp manifests/crd/*.yaml charts/canaryd/crds/"


def test_helm_lint(offline_helm: Helm) -> None:
    offline_helm.ok("lint", "--strict", str(CHART))
    offline_helm.ok("lint", "--strict", str(CHART), "--set", "serviceMonitor.enabled=true",
                    "--set", "podMonitor.enabled=true", "--set", "rbac.clusterWide=false",
                    "--set", "watchNamespace=apps")
    offline_helm.ok("lint", "--strict", str(LOADTESTER_CHART), "--set", "token.value=t0ken")


@pytest.mark.parametrize(("sets", "name"), [
    (("--set", "replicaCount=two"), "replicaCount"),
    (("--set", "leaderElection.enabled=maybe"), "leaderElection"),
    (("--set-string", "noCrossNamespaceRefs=yes"), "noCrossNamespaceRefs"),
    (("--set", "logLevel=loud"), "logLevel"),
    (("--set", "resources=big"), "resources"),
    (("--set", "serviceMonitor.enabled=1"), "serviceMonitor"),
    (("--set", "replicaCout=2"), "replicaCout"),
], ids=["int", "bool", "bool-string", "enum", "object", "nested", "typo"])
def test_a_wrong_value_fails_install_naming_it(helm: Helm, namespace: str, sets: tuple[str, ...],
                                              name: str) -> None:
    """values.schema.json: ``helm install`` with a mistyped value stops before creating anything, and
    its message names the value."""
    release = f"bad-{uuid.uuid4().hex[:6]}"
    got = helm.run("install", release, str(CHART), "--namespace", namespace, *sets)
    assert got.returncode != 0
    assert name in got.stderr, got.stderr
    assert "schema" in got.stderr.lower(), got.stderr
    assert release not in helm.ok("list", "--namespace", namespace, "--short")


def test_loadtester_wrong_value_names_it(offline_helm: Helm) -> None:
    got = offline_helm.run("template", "lt", str(LOADTESTER_CHART), "--set", "enableBash=sometimes")
    assert got.returncode != 0 and "enableBash" in got.stderr, got.stderr


def test_monitors_rendered_only_when_asked(offline_helm: Helm) -> None:
    plain = offline_helm.template(CHART, "canaryd-system")
    assert not of_kind(plain, "ServiceMonitor") and not of_kind(plain, "PodMonitor")
    both = offline_helm.template(CHART, "canaryd-system", "--set", "serviceMonitor.enabled=true",
                                 "--set", "podMonitor.enabled=true")
    assert len(of_kind(both, "ServiceMonitor")) == 1 and len(of_kind(both, "PodMonitor")) == 1


def test_cluster_scoped_names_carry_the_release_name(offline_helm: Helm) -> None:
    """Two releases never collide on ClusterRoles/ClusterRoleBindings."""
    for sets in ((), ("--set", "rbac.clusterWide=false", "--set", "watchNamespace=apps")):
        docs = offline_helm.template(CHART, "ops", *sets, release="blue")
        scoped = [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
        assert scoped
        assert all(d["metadata"]["name"].startswith("blue-") for d in scoped), scoped


def test_a_replica_count_above_one_needs_leader_election(offline_helm: Helm) -> None:
    got = offline_helm.run("template", "x", str(CHART), "--set", "leaderElection.enabled=false")
    assert got.returncode != 0 and "leaderElection.enabled" in got.stderr, got.stderr
    one = offline_helm.template(CHART, "ops", "--set", "leaderElection.enabled=false",
                                "--set", "replicaCount=1")
    assert of_kind(one, "Deployment")[0]["spec"]["replicas"] == 1
    assert not of_kind(one, "PodDisruptionBudget")  # a PDB over one replica would block every drain


def test_security_context_and_uid_match_the_image(offline_helm: Helm) -> None:
    for chart in (CHART, LOADTESTER_CHART):
        pod = of_kind(offline_helm.template(chart, "ops"), "Deployment")[0]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == 65532 and pod["securityContext"]["runAsNonRoot"]
        container = pod["containers"][0]["securityContext"]
        assert container["readOnlyRootFilesystem"] is True and container["allowPrivilegeEscalation"] is False


def test_loadtester_mounts_its_token_as_a_file(offline_helm: Helm) -> None:
    docs = offline_helm.template(LOADTESTER_CHART, "test", "--set", "token.value=s3cret",
                                 release="flagger-loadtester")
    secret = of_kind(docs, "Secret")[0]
    dep = of_kind(docs, "Deployment")[0]
    pod = dep["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert of_kind(docs, "Service")[0]["metadata"]["name"] == "flagger-loadtester"
    assert "--token-file=/var/run/secrets/canaryd-loadtester/token" in container["args"]
    assert "s3cret" not in json.dumps(dep)  # never in args or env: commands inherit the environment
    vol = next(v for v in pod["volumes"] if v["name"] == "token")
    assert vol["secret"]["secretName"] == secret["metadata"]["name"]


# --- the same RBAC as the kustomize manifests ----------------------------------------------------------


def rules(docs: list[dict[str, Any]], kind: str, suffix: str = "") -> list[dict[str, Any]]:
    """The rules of the ``kind`` objects whose name ends with ``suffix``, normalised (sorted lists, sorted
    by content), names and namespaces dropped."""
    out: list[dict[str, Any]] = []
    for doc in of_kind(docs, kind):
        if not doc["metadata"]["name"].endswith(suffix):
            continue
        for rule in doc["rules"]:
            out.append({k: sorted(v) for k, v in rule.items()})
    return sorted(out, key=lambda r: json.dumps(r, sort_keys=True))


def manifest_docs(*paths: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for rel in paths:
        for path in sorted((ROOT / rel).glob("*.yaml")) if (ROOT / rel).is_dir() else [ROOT / rel]:
            docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def binding_shape(docs: list[dict[str, Any]]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(binding kind, role kind, subject kinds) of every binding: who is bound to what, names aside."""
    return sorted((d["kind"], d["roleRef"]["kind"], tuple(s["kind"] for s in d["subjects"]))
                  for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding"))


def test_chart_and_kustomize_render_the_same_rbac(offline_helm: Helm) -> None:
    kustomize = manifest_docs("manifests/rbac")
    chart = offline_helm.template(CHART, "canaryd-system")
    assert rules(chart, "ClusterRole") == rules(kustomize, "ClusterRole")
    assert rules(chart, "Role", "-leader-election") == rules(kustomize, "Role", "-leader-election")
    assert binding_shape(chart) == binding_shape(kustomize)
    # the Lease Role is namespaced in the release's namespace, as manifests/ puts it in canaryd-system
    assert {d["metadata"]["namespace"] for d in of_kind(chart, "Role")} == {"canaryd-system"}
    # a namespaced install grants the same rules, split into a Role and the one cluster-scoped CRD get
    narrow = offline_helm.template(CHART, "ops", "--set", "rbac.clusterWide=false",
                                   "--set", "watchNamespace=apps")
    # the release-manager ClusterRole (people's, aggregated to edit) ships with either install
    assert rules(chart, "ClusterRole", "-release-manager") == rules(narrow, "ClusterRole", "-release-manager")
    assert rules(chart, "ClusterRole", "-release-manager") == rules(kustomize, "ClusterRole",
                                                                    "-release-manager")
    assert [d["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"]
            for d in of_kind(chart, "ClusterRole") + of_kind(kustomize, "ClusterRole")
            if d["metadata"]["name"].endswith("-release-manager")] == ["true", "true"]
    operator = [d for d in kustomize if not d["metadata"]["name"].endswith("-release-manager")]
    narrow_operator = [d for d in narrow if not d["metadata"]["name"].endswith("-release-manager")]
    together = sorted(rules(narrow, "Role", "canaryd") + rules(narrow_operator, "ClusterRole"),
                      key=lambda r: json.dumps(r, sort_keys=True))
    assert together == rules(operator, "ClusterRole")
    assert rules(narrow_operator, "ClusterRole") == [r for r in rules(operator, "ClusterRole")
                                                     if r["apiGroups"] == ["apiextensions.k8s.io"]]
    watched = of_kind(narrow, "Role")
    assert {d["metadata"]["namespace"] for d in watched if d["metadata"]["name"] == "canaryd"} == {"apps"}
    # the load tester chart and manifests/loadtester
    tester = offline_helm.template(LOADTESTER_CHART, "test", release="flagger-loadtester")
    assert rules(tester, "Role") == rules(manifest_docs("manifests/loadtester/role.yaml"), "Role")
    assert binding_shape(tester) == binding_shape(manifest_docs("manifests/loadtester/rolebinding.yaml"))


# --- on the bed's API server ---------------------------------------------------------------------------


@pytest.mark.parametrize("sets", [
    (),
    ("--set", "rbac.clusterWide=false", "--set", "watchNamespace={ns}"),
    ("--set", "slack.url=https://hooks.example.com/x", "--set", "msteams.url=https://teams.example.com/y",
     "--set", "extraArgs={--selector-labels=app}", "--set", "extraEnv[0].name=TZ",
     "--set", "extraEnv[0].value=UTC", "--set", "podAnnotations.a=b", "--set", "noCrossNamespaceRefs=true"),
    ("--set", "serviceMonitor.enabled=true", "--set", "podMonitor.enabled=true"),
], ids=["defaults", "namespaced", "alerts-extras", "monitors"])
def test_templates_pass_a_server_side_dry_run(helm: Helm, bed: Any, namespace: str, monitoring_crds: None,
                                              sets: tuple[str, ...]) -> None:
    """Every object the chart renders is valid for the bed's API server (schemas, RBAC escalation
    checks), ServiceMonitor/PodMonitor against prometheus-operator's own CRDs."""
    release = f"dry-{uuid.uuid4().hex[:6]}"
    docs = helm.template(CHART, namespace, *(s.replace("{ns}", namespace) for s in sets), release=release)
    got = dry_run(bed, docs)
    assert got.returncode == 0, got.stderr
    assert len(got.stdout.strip().splitlines()) == len(docs), got.stdout
    assert all("(server dry run)" in line for line in got.stdout.strip().splitlines()), got.stdout


def test_loadtester_template_passes_a_server_side_dry_run(helm: Helm, bed: Any, namespace: str) -> None:
    docs = helm.template(LOADTESTER_CHART, namespace, "--set", "token.value=t0ken", "--set",
                         "networkPolicy.enabled=true", "--set", "allowCommands={curl}",
                         release="flagger-loadtester")
    got = dry_run(bed, docs)
    assert got.returncode == 0, got.stderr


# --- install, promote, upgrade, uninstall --------------------------------------------------------------


class ChartOperator(Operator):
    """canaryd started with the rendered Deployment's args and env (fieldRefs resolved as the kubelet
    would), plus only what running outside a pod needs: the ServiceAccount's kubeconfig, a local port."""

    def __init__(self, *, deployment: dict[str, Any], pod_namespace: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.deployment = deployment
        self.pod_namespace = pod_namespace

    def container(self) -> dict[str, Any]:
        found: dict[str, Any] = self.deployment["spec"]["template"]["spec"]["containers"][0]
        return found

    def chart_env(self) -> dict[str, str]:
        pod = {"metadata.namespace": self.pod_namespace,
               "metadata.name": f"{self.deployment['metadata']['name']}-7f9c-0"}
        out: dict[str, str] = {}
        for item in self.container().get("env", []):
            if "value" in item:
                out[item["name"]] = str(item["value"])
            elif "fieldRef" in item.get("valueFrom", {}):
                out[item["name"]] = pod[item["valueFrom"]["fieldRef"]["fieldPath"]]
        return out

    def start(self, **env: str) -> Operator:
        self.port = free_port()
        full = {k: v for k, v in os.environ.items()
                if not k.lower().endswith("_proxy") and not k.startswith("CANARYD_") and k != "KUBECONFIG"}
        full.update(self.chart_env())
        full.update(env)
        if self.proxy:
            full.update(HTTP_PROXY=self.proxy, http_proxy=self.proxy,
                        NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        args = [str(a) for a in self.container()["args"]]
        cmd = [sys.executable, "-m", "canaryd", *args, "--kubeconfig", self.kubeconfig,
               "--host", "127.0.0.1", "--port", str(self.port), "--user-agent", self.user_agent]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=full)
        log.close()
        return self


@pytest.fixture
def release_namespace(bed: Any) -> Iterator[str]:
    """The release's namespace (in place of canaryd-system), apart from the watched test namespace."""
    name = f"e2e-helm-rel-{uuid.uuid4().hex[:6]}"
    bed.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        bed.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
async def admin(bed: Any) -> Any:
    client = await bed.admin_client(user_agent="e2e-helm")
    yield client
    await client.close()


def crd_uids(bed: Any) -> dict[str, str]:
    got = bed.kubectl("get", "crd", *CRDS, "-o", "json").stdout
    return {i["metadata"]["name"]: i["metadata"]["uid"] for i in json.loads(got)["items"]}


def deployment_of(bed: Any, namespace: str, name: str) -> dict[str, Any]:
    got = bed.kubectl("-n", namespace, "get", "deployment", name, "-o", "json")
    doc: dict[str, Any] = json.loads(got.stdout)
    return doc


@pytest.mark.parametrize("clusterwide", [True, False], ids=["cluster-wide", "namespaced"])
async def test_install_promote_upgrade_uninstall(helm: Helm, bed: Any, namespace: str,
                                                 release_namespace: str, admin: KubeClient, tmp_path: Path,
                                                 clusterwide: bool) -> None:
    release = f"cd-{uuid.uuid4().hex[:6]}"
    fullname = f"{release}-canaryd"
    sa = f"system:serviceaccount:{release_namespace}:{fullname}"
    uids_before = crd_uids(bed)
    sets = ["--set", f"watchNamespace={namespace}", "--set", f"metricsServer={bed.prometheus_url}",
            "--set", f"rbac.clusterWide={str(clusterwide).lower()}"]
    helm.ok("install", release, str(CHART), "--namespace", release_namespace, *sets)
    manifest = helm.ok("get", "manifest", release, "-n", release_namespace)
    installed = [d for d in yaml.safe_load_all(manifest) if d]
    assert not of_kind(installed, "CustomResourceDefinition")  # crds/ is never part of the release
    assert [d["metadata"]["name"] for d in of_kind(installed, "ServiceAccount")] == [fullname]
    scoped = {d["metadata"]["name"] for d in installed if d["kind"].startswith("Cluster")}
    assert scoped and all(n.startswith(release) for n in scoped)

    deployment = of_kind(installed, "Deployment")[0]
    kubeconfig = bed.kubeconfig_for_serviceaccount(release_namespace, fullname)
    op = ChartOperator(deployment=deployment, pod_namespace=release_namespace, kubeconfig=str(kubeconfig),
                       namespace=namespace, prometheus_url=str(bed.prometheus_url),
                       proxy=mesh_proxy(bed.mesh_url, namespace), log_dir=tmp_path, name="helm")
    env = op.chart_env()
    assert env["CANARYD_NAMESPACE"] == namespace and env["CANARYD_LEADER_ELECT"] == "true"
    try:
        op.start()
        wait_ready(op)
        await create(admin, namespace, podinfo(namespace), canary(namespace, threshold=5, stepWeight=10))
        await wait_phase(admin, namespace, "Initialized")
        await set_image(admin, namespace, "6.0.1")
        await wait_phase(admin, namespace, "Succeeded", seconds=120)
        lease = json.loads(bed.kubectl("-n", release_namespace, "get", "lease", "-o", "json").stdout)["items"]
        assert [item["spec"]["holderIdentity"] for item in lease] == [f"{fullname}-7f9c-0"]
    finally:
        op.stop()
    events = bed.audit_events(username=sa)
    assert len(events) > 20, "canaryd's requests under the chart's ServiceAccount are not in the audit log"
    refused = [f"{e.verb} {e.resource}/{e.subresource} {e.namespace}/{e.name}"
               for e in events if e.code == 403]
    assert refused == []

    # upgrade: changed values land in the Deployment
    helm.ok("upgrade", release, str(CHART), "--namespace", release_namespace, "--reuse-values",
            "--set", "logLevel=debug", "--set", "replicaCount=3")
    upgraded = deployment_of(bed, release_namespace, fullname)
    assert upgraded["spec"]["replicas"] == 3
    container = upgraded["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "CANARYD_LOG_LEVEL", "value": "debug"} in container["env"]
    assert {"name": "CANARYD_NAMESPACE", "value": namespace} in container["env"]  # reused
    listed = json.loads(helm.ok("list", "-n", release_namespace, "-o", "json"))
    assert [(r["name"], str(r["revision"])) for r in listed] == [(release, "2")]

    # uninstall: the release's objects go, the CRDs (and so every Canary) stay
    helm.ok("uninstall", release, "--namespace", release_namespace, "--wait")
    for d in installed:
        ns = ["-n", d["metadata"]["namespace"]] if d["metadata"].get("namespace") else []
        got = bed.kubectl("get", d["kind"].lower(), d["metadata"]["name"], *ns, check=False)
        assert got.returncode != 0 and "NotFound" in got.stderr, (d["kind"], d["metadata"]["name"])
    assert crd_uids(bed) == uids_before
    assert await wait_phase(admin, namespace, "Succeeded")  # the Canary itself is untouched


def launch(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m canaryd <args>`` with ``env`` over this process's (proxies dropped), logging to a file."""
    full = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    full.update(env)
    with log_path.open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "canaryd", *args], stdout=log,
                                stderr=subprocess.STDOUT, cwd=ROOT, env=full)


async def test_loadtester_release_serves_gates_under_its_own_rbac(helm: Helm, bed: Any, namespace: str,
                                                                  tmp_path: Path) -> None:
    """``helm install flagger-loadtester charts/loadtester``: the rendered args (token file in place of
    the Secret volume, holding the Secret's value) start the load tester under the release's
    ServiceAccount; opening a gate writes its ConfigMap with no 403."""
    token = uuid.uuid4().hex
    helm.ok("install", "flagger-loadtester", str(LOADTESTER_CHART), "--namespace", namespace,
            "--set", f"token.value={token}")
    installed = [d for d in yaml.safe_load_all(helm.ok("get", "manifest", "flagger-loadtester",
                                                       "-n", namespace)) if d]
    container = of_kind(installed, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    stored = bed.kubectl("-n", namespace, "get", "secret", "flagger-loadtester-token",
                         "-o", "jsonpath={.data.token}").stdout
    token_file = tmp_path / "token"
    token_file.write_bytes(base64.b64decode(stored))
    mounted = "/var/run/secrets/canaryd-loadtester/token"
    args = [a.replace(mounted, str(token_file)) for a in container["args"]]
    assert str(token_file) in " ".join(args)
    kubeconfig = bed.kubeconfig_for_serviceaccount(namespace, "flagger-loadtester")
    port = free_port()
    log_path = tmp_path / "loadtester.log"
    proc = launch([*args, "--kubeconfig", str(kubeconfig), "--host", "127.0.0.1", "--port", str(port)],
                  {"POD_NAMESPACE": namespace}, log_path)  # the rendered fieldRef
    url = f"http://127.0.0.1:{port}"
    canary_ref = {"name": "podinfo", "namespace": namespace}

    async def post(path: str, bearer: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as s, s.post(url + path, json=canary_ref,
                                                        headers={"Authorization": f"Bearer {bearer}"}) as r:
            return r.status, await r.text()

    async def healthy() -> bool | None:
        assert proc.poll() is None, log_path.read_text()[-2000:]
        try:
            async with aiohttp.ClientSession() as s, s.get(url + "/healthz") as r:
                return True if r.status == 200 else None
        except aiohttp.ClientError:
            return None

    try:
        await wait_for(healthy, 30, "the load tester of the release to answer /healthz")
        assert (await post("/gate/open", "not-the-token"))[0] == 401
        assert await post("/gate/open", token) == (202, f"gate podinfo.{namespace} opened")
        assert await post("/gate/check", token) == (200, "Approved")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    gates = bed.kubectl("-n", namespace, "get", "configmap", "canaryd-loadtester-gates", "-o", "json").stdout
    assert json.loads(gates)["data"]
    events = bed.audit_events(username=f"system:serviceaccount:{namespace}:flagger-loadtester")
    assert events and [e for e in events if e.code == 403] == []
    helm.ok("uninstall", "flagger-loadtester", "--namespace", namespace)
