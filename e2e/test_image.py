"""canaryd's OCI image, built here (``image/build.py``) and run: kwok's pods run nothing, so the containers
of the kustomize manifests' Deployments run from the unpacked image under bubblewrap (e2e/image_run.py) as
uid 65532 with a read-only root, a TokenRequest token of their ServiceAccount at the ServiceAccount path
and ``KUBERNETES_SERVICE_HOST/PORT`` pointing at the bed:

- the image itself: an oci-archive skopeo reads, one uid in the image and both manifests, ``canaryd``
  entrypoint, ``/flagger``, curl, wget, Debian's python3 ≥ 3.11, precompiled bytecode, nothing writable;
- canaryd's Deployment (``manifests/``) drives the tutorial's promotion to Succeeded, calling the load
  tester's Deployment (``manifests/loadtester``, same image, ``--enable-bash``) for Flagger's tutorial
  pre-rollout ``curl … | grep token`` (type bash) and the load test (built-in hey), with no 403;
- Flagger's way to start it: ``./flagger`` with Flagger's flags, no /tmp volume, and Flagger's probe
  ``wget --spider …/healthz`` run inside the image.

Patches the bed forces, as a kustomize overlay would write them: the watched namespace (the bed is shared
by concurrent tests), the HTTP port (the host's network is shared), the Prometheus URL (no cluster DNS),
``HTTP_PROXY`` (the mesh simulator answers in-cluster names), the User-Agent (the audit log check), and the
pod's namespace (its Lease lives beside the test's canary)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tomllib
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from canaryd.kube.client import KubeClient
from canaryd.kube.resources import DEPLOYMENT, HPA
from e2e.bed.waiting import wait_for
from e2e.canaries import podinfo, set_image
from e2e.image_run import (
    Image,
    Pod,
    api_endpoint,
    build,
    container_argv,
    container_env,
    container_process,
    inside,
    readable_dir,
    rendered,
    run_as,
    sandbox_argv,
    service_account_dir,
    unpack,
)
from e2e.loadtester import install as install_loadtester
from e2e.loadtester import token_for, webhook_url
from e2e.mesh.control import MeshControl
from e2e.operator import SERVICE_ACCOUNT, SYSTEM_NAMESPACE, free_port, grant_leases, install_rbac, mesh_proxy
from e2e.tutorial import canary_events, forbidden, hpa, tutorial_canary, wait_status

ROOT = Path(__file__).resolve().parents[1]
UID = 65532
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    """This checkout's image, built (Debian base and wheels from ~/.cache/canaryd-image) and unpacked."""
    work = readable_dir("canaryd-image-e2e-")
    try:
        yield unpack(build(work / "dist"), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def deployment(path: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in rendered(ROOT / path) if d["metadata"]["name"] == name]
    return found


class Container:
    """One container of a rendered Deployment running from the image; its output in a log file."""

    def __init__(self, image: Image, dep: dict[str, Any], pod: Pod, log: Path,
                 container: dict[str, Any] | None = None) -> None:
        self.spec = dep["spec"]["template"]["spec"]
        self.container = container or self.spec["containers"][0]
        self.cmd, self.env = sandbox_argv(image, self.spec, self.container, pod)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Container:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT,
                                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        return self

    def answers(self, port: int, path: str) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):  # as the kubelet does: SIGTERM to the container's PID 1
                os.kill(container_process(self.proc.pid), signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


def sandboxed(image: Image, *argv: str) -> subprocess.CompletedProcess[str]:
    """One command in the image as the canaryd container would run it (its user, read-only root, no
    volumes)."""
    dep = deployment("manifests", "canaryd")
    container = {**dep["spec"]["template"]["spec"]["containers"][0], "volumeMounts": []}
    cmd, _ = sandbox_argv(image, dep["spec"]["template"]["spec"], container, Pod("ns", "pod"), argv)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})


# ---- the runtime rules e2e/image_run.py follows (plain tables, no image needed) ------------------------

IMAGE_CONFIG = Image(archive=Path("x"), rootfs=Path("x"), layers=1,
                     config={"Entrypoint": ["canaryd"], "Cmd": ["run"], "User": "65532:65532",
                             "Env": ["PATH=/usr/bin", "A=image"]})


@pytest.mark.parametrize(("container", "argv"), [
    ({}, ["canaryd", "run"]),  # entrypoint + Cmd
    ({"args": ["loadtester", "--port", "8080"]}, ["canaryd", "loadtester", "--port", "8080"]),  # args: Cmd
    ({"args": []}, ["canaryd"]),
    ({"command": ["./flagger", "-log-level=info"]}, ["./flagger", "-log-level=info"]),  # no Cmd after it
    ({"command": ["./flagger"], "args": ["-port=$(PORT)", "$$(PORT)", "$(NONE)"]},
     ["./flagger", "-port=9090", "$(PORT)", "$(NONE)"]),
])
def test_command_and_args_follow_kubernetes_rules(container: dict[str, Any], argv: list[str]) -> None:
    assert container_argv(IMAGE_CONFIG, container, {"PORT": "9090"}) == argv


def test_env_and_user_follow_kubernetes_rules() -> None:
    container = {"env": [{"name": "A", "value": "pod-$(PATH)"},
                         {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
                 "securityContext": {"runAsUser": 1000}}
    env = container_env(IMAGE_CONFIG, container, Pod("ns1", "p", env={"B": "patch"}))
    assert env == {"PATH": "/usr/bin", "A": "pod-/usr/bin", "NS": "ns1", "B": "patch"}
    assert run_as(IMAGE_CONFIG, {"securityContext": {"runAsGroup": 7}}, container) == (1000, 7)
    assert run_as(IMAGE_CONFIG, {}, {}) == (65532, 65532)


def test_mount_points_follow_the_images_symlinks(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "run").symlink_to("/run")
    (tmp_path / "var" / "lock").symlink_to("../run/lock")
    assert inside(tmp_path, "/var/run/secrets/x") == tmp_path / "run" / "secrets" / "x"
    assert inside(tmp_path, "/var/lock/y") == tmp_path / "run" / "lock" / "y"
    assert inside(tmp_path, "/tmp") == tmp_path / "tmp"


# ---- the image itself ----------------------------------------------------------------------------------


def test_image_is_an_oci_archive_with_one_uid_and_flaggers_tools(image: Image) -> None:
    got = subprocess.run(["skopeo", "inspect", "--config", f"oci-archive:{image.archive}"],
                         capture_output=True, text=True, check=True, timeout=120)
    config = json.loads(got.stdout)["config"]
    assert config == image.config
    assert (config["User"], config["Entrypoint"], config["Cmd"], config["WorkingDir"]) == \
        (f"{UID}:{UID}", ["canaryd"], ["run"], "/")
    assert "PYTHONDONTWRITEBYTECODE=1" in config["Env"]
    assert image.layers == 2
    # one uid everywhere: image, canaryd's Deployment, the load tester's, the Dockerfile
    for path, name in (("manifests", "canaryd"), ("manifests/loadtester", "flagger-loadtester")):
        ctx = deployment(path, name)["spec"]["template"]["spec"]["securityContext"]
        assert (ctx["runAsUser"], ctx["runAsGroup"], ctx["runAsNonRoot"]) == (UID, UID, True), path
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"USER {UID}:{UID}" in dockerfile and 'ENTRYPOINT ["canaryd"]' in dockerfile
    installed = next(line for line in dockerfile.splitlines() if "install -y --no-install-recommends python3 "
                     in line and "curl" in line)
    assert all(f" {pkg}" in installed for pkg in ("python3", "curl", "wget", "ca-certificates")), installed

    assert sandboxed(image, "canaryd", "--version").stdout.strip() == VERSION
    assert sandboxed(image, "id", "-u").stdout.strip() == str(UID)
    probe = ("import sys, importlib.util as u, canaryd.cli as c, aiohttp, orjson, yaml, kubernetes_asyncio;"
             "print(sys.version_info >= (3, 11), sys.executable, u.cache_from_source(c.__file__))")
    ok, executable, pyc = sandboxed(image, "python3", "-c", probe).stdout.split()
    assert (ok, executable) == ("True", "/usr/bin/python3")
    assert (image.rootfs / pyc.lstrip("/")).is_file(), "canaryd ships precompiled"
    for tool in ("curl", "wget"):
        assert sandboxed(image, tool, "--version").returncode == 0, tool
    flagger = image.rootfs / "flagger"
    assert flagger.is_file() and os.access(flagger, os.X_OK)
    for path in ("/probe", "/tmp/probe", "/usr/local/probe"):
        wrote = sandboxed(image, "sh", "-c", f"echo x > {path}")
        assert wrote.returncode != 0 and "Read-only file system" in wrote.stderr, path


def test_build_is_reproducible() -> None:
    """Same inputs (the cached Debian base, the locked wheels, one snapshot of the source), same bytes and
    manifest digest: two builds of a copy of this checkout."""
    work = readable_dir("canaryd-image-again-")
    try:
        src = work / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, src / name)
        for name in ("canaryd", "image"):
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        first, second = (build(work / out, script=src / "image" / "build.py") for out in ("one", "two"))
        assert Path(f"{first}.digest").read_text() == Path(f"{second}.digest").read_text()
        assert first.read_bytes() == second.read_bytes()
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---- canaryd + the load tester from the image, through the tutorial's promotion ----------------------


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client(user_agent="e2e-image")
    try:
        yield client
    finally:
        await client.close()


def operator_pod(bed: Any, ns: str, work: Path, port: int) -> Pod:
    """canaryd's pod as the kubelet would make it from manifests/ (ServiceAccount canaryd-system/canaryd)."""
    install_rbac(bed)
    grant_leases(bed, ns)
    host, api_port = api_endpoint(bed)
    sa = service_account_dir(bed, work / "sa-canaryd", SYSTEM_NAMESPACE, SERVICE_ACCOUNT, ns)
    proxy = mesh_proxy(bed.mesh_url, ns) or ""
    return Pod(namespace=ns, name="canaryd-7d4b9c-x2x5z", service_account=sa,
               volumes={"/tmp": None},
               env={"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": api_port,
                    "CANARYD_NAMESPACE": ns, "CANARYD_PORT": str(port),
                    "CANARYD_METRICS_SERVER": str(bed.prometheus_url),
                    "CANARYD_USER_AGENT": f"canaryd/e2e-{ns}",
                    "HTTP_PROXY": proxy, "http_proxy": proxy, "NO_PROXY": "127.0.0.1,localhost",
                    "no_proxy": "127.0.0.1,localhost"})


async def test_image_runs_the_tutorial_with_its_load_tester(bed: Any, namespace: str, admin: KubeClient,
                                                             image: Image, tmp_path: Path) -> None:
    ns = namespace
    work = readable_dir("canaryd-image-pod-")
    started: list[Container] = []
    try:
        # the load tester: manifests/loadtester in the test namespace, its token Secret as a file (0440,
        # group 65532: the Deployment's fsGroup), type bash enabled
        install_loadtester(bed, ns)
        secret = work / "loadtester-token"
        secret.mkdir(mode=0o755)
        (secret / "token").write_text(token_for(ns))
        os.chown(secret / "token", 0, UID)
        (secret / "token").chmod(0o440)
        lt_port = free_port()
        lt_dep = deployment("manifests/loadtester", "flagger-loadtester")
        lt_container = lt_dep["spec"]["template"]["spec"]["containers"][0]
        args = list(lt_container["args"])
        args[args.index("--port") + 1] = str(lt_port)
        lt_container = {**lt_container, "args": [*args, "--enable-bash"]}
        host, api_port = api_endpoint(bed)
        proxy = mesh_proxy(bed.mesh_url, ns) or ""
        lt_pod = Pod(namespace=ns, name="flagger-loadtester-5c9f-abcde",
                     service_account=service_account_dir(bed, work / "sa-lt", ns, "flagger-loadtester", ns),
                     volumes={"/tmp": None, "/var/run/secrets/canaryd-loadtester": secret},
                     env={"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": api_port,
                          "HTTP_PROXY": proxy, "http_proxy": proxy, "NO_PROXY": "127.0.0.1,localhost",
                          "no_proxy": "127.0.0.1,localhost"})
        tester = Container(image, lt_dep, lt_pod, tmp_path / "loadtester.log", lt_container).start()
        started.append(tester)
        await wait_for(lambda: tester.answers(lt_port, "/healthz"), 60, "the load tester from the image")
        await MeshControl(str(bed.mesh_url)).register(ns, "flagger-loadtester", f"127.0.0.1:{lt_port}")

        port = free_port()
        op = Container(image, deployment("manifests", "canaryd"), operator_pod(bed, ns, work, port),
                       tmp_path / "canaryd.log").start()
        started.append(op)
        await wait_for(lambda: op.answers(port, "/readyz"), 90, "canaryd from the image ready")

        canary = tutorial_canary(ns, interval="2s")
        pre_rollout = f"curl -sd 'test' http://podinfo-canary.{ns}:9898/token | grep token"
        canary["spec"]["canaryAnalysis"]["webhooks"] = [
            {"name": "acceptance-test", "type": "pre-rollout", "url": webhook_url(ns), "timeout": "30s",
             "metadata": {"type": "bash", "cmd": pre_rollout}},
            {"name": "load-test", "url": webhook_url(ns), "timeout": "5s",
             "metadata": {"cmd": f"hey -z 1m -q 10 -c 2 http://podinfo-canary.{ns}:9898/"}},
        ]
        await admin.create(DEPLOYMENT, ns, podinfo(ns))
        await admin.create(HPA, ns, hpa(ns))
        bed.apply(canary, ns)
        await wait_status(admin, ns, "podinfo", "Initialized", lambda s: s.get("phase") == "Initialized")
        await set_image(admin, ns, "6.0.1")
        st = await wait_status(admin, ns, "podinfo", "a final phase",
                               lambda s: s.get("phase") in ("Succeeded", "Failed"), 180)
        messages = [str(e.get("message")) for e in await canary_events(admin, ns)]
        assert st.get("phase") == "Succeeded", (st.get("message"), messages[-8:])
        assert "Pre-rollout check acceptance-test passed" in messages
        metrics = await asyncio.to_thread(fetch, f"http://127.0.0.1:{lt_port}/metrics")
        assert 'canaryd_loadtester_commands_total{result="succeeded",type="bash"}' in metrics
        assert forbidden(bed, ns) == []
        assert op.stop() == 0 and tester.stop() == 0  # SIGTERM: clean exits
    finally:
        for c in started:
            c.stop()
        shutil.rmtree(work, ignore_errors=True)


async def test_flagger_entrypoint_takes_flaggers_flags_and_passes_its_wget_probe(
        bed: Any, namespace: str, image: Image, tmp_path: Path) -> None:
    """Flagger's chart runs ``./flagger -flag=value …`` from WORKDIR / with no /tmp volume and probes with
    ``wget --spider``; the same container spec with canaryd's image."""
    ns = namespace
    work = readable_dir("canaryd-image-flagger-")
    port = free_port()
    dep = deployment("manifests", "canaryd")
    container = {"name": "flagger", "image": "ghcr.io/canaryd/canaryd:" + VERSION,
                 "command": ["./flagger", "-log-level=info", "-mesh-provider=istio",
                             f"-metrics-server={bed.prometheus_url}", f"-namespace={ns}", f"-port={port}",
                             "-enable-config-tracking=true"],
                 "securityContext": {"readOnlyRootFilesystem": True, "runAsUser": UID,
                                     "allowPrivilegeEscalation": False}}
    pod = operator_pod(bed, ns, work, port)
    pod.env = {k: v for k, v in pod.env.items() if k.startswith(("KUBERNETES_", "CANARYD_USER_AGENT"))}
    proc = Container(image, dep, pod, tmp_path / "flagger.log", container).start()
    try:
        await wait_for(lambda: proc.answers(port, "/readyz"), 90, "./flagger from the image ready")
        probe_cmd, _ = sandbox_argv(image, dep["spec"]["template"]["spec"], container, Pod(ns, "probe"),
                                    ["wget", "--spider", "-q", f"http://127.0.0.1:{port}/healthz"])
        probe = await asyncio.to_thread(subprocess.run, probe_cmd, capture_output=True, text=True,
                                        timeout=30, check=False)
        assert probe.returncode == 0, probe.stderr
        bad_cmd, _ = sandbox_argv(image, dep["spec"]["template"]["spec"], container, Pod(ns, "probe"),
                                  ["wget", "--spider", "-q", f"http://127.0.0.1:{port}/nothing-here"])
        bad = await asyncio.to_thread(subprocess.run, bad_cmd, capture_output=True, timeout=30, check=False)
        assert bad.returncode != 0
        assert proc.stop() == 0
    finally:
        proc.stop()
        shutil.rmtree(work, ignore_errors=True)

