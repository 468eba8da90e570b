"""canaryd's OCI image run on this machine as a container runtime would, without one (kwok's pods run
nothing): build it (``image/build.py``, cached base), unpack its layers into a root filesystem, and run a
rendered container (command/args/env of a Deployment) under bubblewrap as the image's numeric user with
the root filesystem read-only, the pod's volumes mounted (a ServiceAccount token from the TokenRequest
API, Secrets, emptyDirs) and the host's network (so 127.0.0.1 reaches the bed's API server, and the mesh
simulator's proxy answers in-cluster names through ``HTTP_PROXY``)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(frozen=True)
class Image:
    """An unpacked image: its root filesystem and its config (``config`` of the OCI image config)."""

    archive: Path
    rootfs: Path
    config: dict[str, Any]
    layers: int


def build(out: Path, script: Path = ROOT / "image" / "build.py") -> Path:
    """``python3 image/build.py --out OUT`` (the Debian base and wheels come from the cache after the first
    build); returns the oci-archive."""
    got = subprocess.run([sys.executable, str(script), "--out", str(out)],
                         capture_output=True, text=True, timeout=900, check=False)
    if got.returncode != 0:
        raise AssertionError(f"image build failed ({got.returncode}):\n{got.stderr[-4000:]}")
    return Path(got.stdout.strip().splitlines()[-1])


def _blob(layout: Path, digest: str) -> Path:
    algo, hexdigest = digest.split(":", 1)
    return layout / "blobs" / algo / hexdigest


def unpack(archive: Path, dest: Path) -> Image:
    """Extract the oci-archive's single image: layers in order (whiteouts applied) into ``dest/rootfs``."""
    layout = dest / "layout"
    with tarfile.open(archive) as tar:
        tar.extractall(layout, filter="data")
    index = json.loads((layout / "index.json").read_text())
    (entry,) = index["manifests"]
    manifest = json.loads(_blob(layout, entry["digest"]).read_text())
    config = json.loads(_blob(layout, manifest["config"]["digest"]).read_text())
    rootfs = dest / "rootfs"
    rootfs.mkdir()
    for layer in manifest["layers"]:
        with tarfile.open(_blob(layout, layer["digest"]), "r:gz") as tar:
            for member in tar.getmembers():
                name = Path(member.name)
                if name.name.startswith(".wh."):
                    target = rootfs / name.parent / name.name[4:]
                    if target.is_dir() and not target.is_symlink():
                        shutil.rmtree(target)
                    else:
                        target.unlink(missing_ok=True)
                    continue
                tar.extract(member, rootfs, numeric_owner=True, filter="fully_trusted")
    shutil.rmtree(layout)
    return Image(archive=archive, rootfs=rootfs, config=config["config"], layers=len(manifest["layers"]))


def inside(rootfs: Path, path: str) -> Path:
    """Where ``path`` of the image is on the host, following the image's own symlinks (/var/run → /run)."""
    parts = [p for p in path.split("/") if p]
    current = rootfs
    for i, part in enumerate(parts):
        if (current / part).is_symlink():
            target = os.readlink(current / part)
            where = target if target.startswith("/") else "/".join(["", *parts[:i], target])
            return inside(rootfs, os.path.normpath("/".join([where, *parts[i + 1:]])))
        current = current / part
    return current


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` references in command/args (``$$`` escapes)."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


@dataclass
class Pod:
    """What the kubelet would give one container: field references, volume contents, extra env."""

    namespace: str
    name: str
    volumes: dict[str, Path | None] = field(default_factory=dict)  # mountPath → host dir (None: emptyDir)
    env: dict[str, str] = field(default_factory=dict)  # patches, applied last (as a kustomize patch would)
    service_account: Path | None = None  # dir with token, ca.crt, namespace


def container_env(image: Image, container: Mapping[str, Any], pod: Pod) -> dict[str, str]:
    env = dict(item.split("=", 1) for item in image.config.get("Env") or [])
    fields = {"metadata.namespace": pod.namespace, "metadata.name": pod.name}
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = expand(str(item["value"]), env)
        elif "fieldRef" in (item.get("valueFrom") or {}):
            env[item["name"]] = fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            raise AssertionError(f"env {item['name']}: only value and fieldRef are simulated")
    env.update(pod.env)
    return env


def container_argv(image: Image, container: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """Kubernetes' rule: ``command`` replaces the entrypoint, ``args`` the image's Cmd."""
    command = container.get("command")
    args = container.get("args")
    if command:
        argv = [*command, *(args or [])]
    else:
        argv = [*(image.config.get("Entrypoint") or []), *(args if args is not None else
                                                             image.config.get("Cmd") or [])]
    return [expand(str(a), env) for a in argv]


def run_as(image: Image, pod_spec: Mapping[str, Any], container: Mapping[str, Any]) -> tuple[int, int]:
    """The uid/gid the runtime would use: the container's, the pod's securityContext, else the image's."""
    ctx = {**(pod_spec.get("securityContext") or {}), **(container.get("securityContext") or {})}
    user, _, group = str(image.config.get("User") or "0").partition(":")
    uid = int(ctx.get("runAsUser", user))
    return uid, int(ctx.get("runAsGroup", group or uid))


def sandbox_argv(image: Image, pod_spec: Mapping[str, Any], container: Mapping[str, Any], pod: Pod,
                 argv: Sequence[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """(the host command that runs the container, its env); ``argv`` replaces the container's command."""
    ctx = container.get("securityContext") or {}
    assert ctx.get("readOnlyRootFilesystem") is True, "the manifests promise a read-only root filesystem"
    if not shutil.which("bwrap") or not shutil.which("setpriv"):
        raise AssertionError("bubblewrap and setpriv are needed: apt-get install bubblewrap util-linux")
    env = container_env(image, container, pod)
    uid, gid = run_as(image, pod_spec, container)
    assert uid != 0, "the image runs as a numeric non-root user"
    cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
           "bwrap", "--unshare-user", "--uid", str(uid), "--gid", str(gid), "--unshare-pid", "--unshare-ipc",
           "--unshare-uts", "--as-pid-1", "--die-with-parent", "--ro-bind", str(image.rootfs), "/",
           "--proc", "/proc", "--dev", "/dev", "--chdir", str(image.config.get("WorkingDir") or "/"),
           "--clearenv"]
    mounts: dict[str, Path | None] = {}
    if pod.service_account is not None:
        mounts[SA_PATH] = pod.service_account
    for mount in container.get("volumeMounts") or []:
        path = mount["mountPath"]
        if path not in pod.volumes:
            raise AssertionError(f"volume mount {path}: the test gives it no contents")
        mounts[path] = pod.volumes[path]
    for path, source in sorted(mounts.items()):
        host = inside(image.rootfs, path)
        host.mkdir(parents=True, exist_ok=True)  # the runtime's mount point
        real = f"/{host.relative_to(image.rootfs).as_posix()}"  # bwrap would follow /var/run on the host
        cmd += ["--tmpfs", real] if source is None else ["--ro-bind", str(source), real]
    for key, value in sorted(env.items()):
        cmd += ["--setenv", key, value]
    return [*cmd, "--", *(argv if argv is not None else container_argv(image, container, env))], env


def container_process(pid: int) -> int:
    """The container's PID 1 under the sandbox ``pid`` (bwrap forks before it execs the command; the
    kubelet's signals go to PID 1): the first descendant that is PID 1 of its own PID namespace."""
    for _ in range(8):
        nspids = next((line.split()[1:] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                       if line.startswith("NSpid:")), [])
        if len(nspids) > 1 and nspids[-1] == "1":
            return pid
        children = [c for task in Path(f"/proc/{pid}/task").glob("*")
                    for c in (task / "children").read_text().split()]
        if not children:
            break
        pid = int(children[0])
    raise ProcessLookupError("no PID 1 of a PID namespace under the sandbox")


def readable_dir(prefix: str) -> Path:
    """A fresh directory the image's user can traverse (pytest's tmp dirs are 0700, root's)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def service_account_dir(cluster: Any, dest: Path, namespace: str, name: str, token_namespace: str) -> Path:
    """A TokenRequest token of ServiceAccount ``namespace/name``, the cluster's CA and ``token_namespace``
    (the pod's namespace), laid out as the kubelet projects them (world-readable, like its 0644 files)."""
    token = cluster.kubectl("-n", namespace, "create", "token", name, "--duration=1h").stdout.strip()
    raw = cluster.kubectl_json("config", "view", "--minify", "--flatten", "--raw")
    ca_data = raw["clusters"][0]["cluster"]["certificate-authority-data"]
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o755)
    (dest / "token").write_text(token)
    (dest / "ca.crt").write_bytes(base64.b64decode(ca_data))
    (dest / "namespace").write_text(token_namespace)
    for f in dest.iterdir():
        f.chmod(0o644)
    return dest


def api_endpoint(cluster: Any) -> tuple[str, str]:
    """(KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT) of the cluster's API server."""
    raw = cluster.kubectl_json("config", "view", "--minify", "--raw")
    server = str(raw["clusters"][0]["cluster"]["server"])
    m = re.fullmatch(r"https://([^/:]+|\[[^\]]+\]):(\d+)/?", server)
    assert m, f"unexpected API server URL {server}"
    return m.group(1).strip("[]"), m.group(2)


def rendered(kustomization: Path, kind: str = "Deployment") -> list[dict[str, Any]]:
    """``kubectl kustomize DIR``'s objects of ``kind``."""
    out = subprocess.run(["kubectl", "kustomize", str(kustomization)], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d and d.get("kind") == kind]
