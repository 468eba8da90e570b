"""Makes sure every binary and generated file the bed needs is in the version-keyed cache.

Built or downloaded only when a component's ``.complete`` marker is missing; a failure raises
``BedError`` naming the component and the reason (never a fallback to a mock)."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from e2e.bed import versions
from e2e.bed.errors import BedError

log = logging.getLogger("e2e.bed")
BUILD_SCRIPT = Path(__file__).with_name("build-bins.sh")


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of everything the bed runs."""

    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    etcd: Path
    kwok: Path
    kwok_module_dir: Path
    prometheus: Path
    istio_crds: Path


def _tail(text: str, lines: int = 1) -> str:
    rows = [r for r in text.strip().splitlines() if r.strip()]
    return " | ".join(rows[-lines:]) if rows else "(no output)"


def _build(comp: str) -> Path:
    """Runs build-bins.sh for one Go component unless its cache dir is complete."""
    version = versions.BUILT[comp]
    out = versions.comp_dir(comp, version)
    if (out / ".complete").exists():
        return out
    log.info("building %s %s into %s (first run on this machine: minutes)", comp, version, out)
    env = {**os.environ, "K8S_VERSION": versions.K8S_VERSION, "ETCD_VERSION": versions.ETCD_VERSION,
           "KWOK_VERSION": versions.KWOK_VERSION}
    proc = subprocess.run(["bash", str(BUILD_SCRIPT), comp, str(out)], env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not (out / ".complete").exists():
        raise BedError(f"{comp} {version}", f"build failed (exit {proc.returncode}): {_tail(proc.stderr)}",
                       proc.stderr[-4000:])
    return out


def _prometheus() -> Path:
    """Debian's prometheus package, unpacked with dpkg -x (installing it would start a daemon)."""
    out = versions.comp_dir("prometheus", versions.PROMETHEUS_VERSION)
    binary = out / "usr" / "bin" / "prometheus"
    if (out / ".complete").exists():
        return binary
    comp = f"prometheus {versions.PROMETHEUS_VERSION}"
    log.info("downloading Debian's prometheus package into %s", out)
    with tempfile.TemporaryDirectory(prefix="canaryd-bed-prom-") as tmp:
        def download() -> subprocess.CompletedProcess[str]:
            return subprocess.run(["apt-get", "download", "prometheus"], cwd=tmp,
                                  capture_output=True, text=True, check=False)
        try:
            got = download()
            if got.returncode != 0:
                subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True, check=False)
                got = download()
        except FileNotFoundError as exc:
            raise BedError(comp, f"apt-get is not available: {exc}") from exc
        debs = sorted(Path(tmp).glob("prometheus_*.deb"))
        if got.returncode != 0 or not debs:
            raise BedError(comp, f"apt-get download prometheus failed: {_tail(got.stderr)}", got.stderr)
        staging = Path(tmp) / "x"
        unpack = subprocess.run(["dpkg", "-x", str(debs[0]), str(staging)],
                                capture_output=True, text=True, check=False)
        if unpack.returncode != 0:
            raise BedError(comp, f"dpkg -x failed: {_tail(unpack.stderr)}", unpack.stderr)
        ver = subprocess.run([str(staging / "usr/bin/prometheus"), "--version"],
                             capture_output=True, text=True, check=False)
        if f"version {versions.PROMETHEUS_VERSION}" not in ver.stdout + ver.stderr:
            raise BedError(comp, f"{debs[0].name} is not version {versions.PROMETHEUS_VERSION}: "
                           f"{_tail(ver.stdout + ver.stderr)} (bump PROMETHEUS_VERSION in versions.py)")
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), str(out))
    (out / ".complete").touch()
    return binary


def _served(crd: dict[str, Any]) -> set[str]:
    return {v["name"] for v in crd["spec"]["versions"] if v.get("served")}


def _go_mod_dir(comp: str, module: str) -> Path:
    """The unpacked source of ``module`` (``path@version``) in the Go module cache, downloaded if missing."""
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
    try:
        got = subprocess.run(["go", "mod", "download", "-json", module],
                             capture_output=True, text=True, check=False, env=env, cwd=tempfile.gettempdir())
    except FileNotFoundError as exc:
        raise BedError(comp, f"the go command is not available: {exc}") from exc
    try:
        info = json.loads(got.stdout)
    except json.JSONDecodeError:
        info = {}
    if got.returncode != 0 or "Dir" not in info:
        why = info.get("Error") or _tail(got.stderr)
        raise BedError(comp, f"go mod download failed: {why}", got.stderr)
    return Path(info["Dir"])


def helm() -> Path:
    """Helm v4 built from the Go module proxy (build-bins.sh helm), cached like the bed's binaries."""
    version = versions.HELM_VERSION
    out = versions.comp_dir("helm", version)
    if (out / ".complete").exists():
        return out / "helm"
    out.parent.mkdir(parents=True, exist_ok=True)
    # several pytest-xdist workers may ask at once: one builds, the others wait for it
    with open(out.parent / f".helm-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / ".complete").exists():
            log.info("building helm %s into %s (first run on this machine: minutes)", version, out)
            env = {**os.environ, "HELM_VERSION": version}
            proc = subprocess.run(["bash", str(BUILD_SCRIPT), "helm", str(out)], env=env,
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0 or not (out / ".complete").exists():
                raise BedError(f"helm {version}", f"build failed (exit {proc.returncode}): "
                               f"{_tail(proc.stderr)}", proc.stderr[-4000:])
    return out / "helm"


def prometheus_operator_crds() -> Path:
    """The ServiceMonitor and PodMonitor CRDs of prometheus-operator's Go module (its example/ CRDs)."""
    version = versions.PROMETHEUS_OPERATOR_VERSION
    out = versions.comp_dir("prometheus-operator-crds", version)
    target = out / "monitoring-crds.yaml"
    if (out / ".complete").exists():
        return target
    comp = f"prometheus-operator CRDs ({version})"
    source = _go_mod_dir(comp, f"github.com/prometheus-operator/prometheus-operator@{version}")
    docs: list[dict[str, Any]] = []
    for kind in versions.PROMETHEUS_OPERATOR_KINDS:
        path = source / "example" / "prometheus-operator-crd" / f"monitoring.coreos.com_{kind.lower()}s.yaml"
        if not path.exists():
            raise BedError(comp, f"{path} is missing from the module")
        doc = yaml.safe_load(path.read_text())
        if doc.get("kind") != "CustomResourceDefinition" or doc["spec"]["names"]["kind"] != kind:
            raise BedError(comp, f"{path.name} is not the {kind} CRD")
        docs.append(doc)
    out.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}")  # atomic: workers may write it at once
    tmp.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    tmp.replace(target)
    (out / ".complete").touch()
    return target


def _istio_crds() -> Path:
    """VirtualService, DestinationRule and Gateway CRDs from istio.io/api's generated YAML (full schemas)."""
    version = versions.ISTIO_API_VERSION
    out = versions.comp_dir("istio-crds", version)
    target = out / "istio-networking-crds.yaml"
    if (out / ".complete").exists():
        return target
    comp = f"istio CRDs (istio.io/api {version})"
    module = _go_mod_dir(comp, f"istio.io/api@{version}")
    source = module / "kubernetes" / "customresourcedefinitions.gen.yaml"
    if not source.exists():
        raise BedError(comp, f"{source} is missing from the module")
    wanted: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(source.read_text()):
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        if spec.get("group") == "networking.istio.io" and spec["names"]["kind"] in versions.ISTIO_KINDS:
            wanted.append(doc)
    kinds = {d["spec"]["names"]["kind"] for d in wanted}
    if kinds != set(versions.ISTIO_KINDS):
        raise BedError(comp, f"expected CRDs {sorted(versions.ISTIO_KINDS)}, found {sorted(kinds)}")
    for doc in wanted:
        missing = set(versions.ISTIO_SERVED) - _served(doc)
        if missing:
            raise BedError(comp, f"{doc['metadata']['name']} does not serve {sorted(missing)}")
    out.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump_all(wanted, sort_keys=False))
    (out / ".complete").touch()
    return target


def ensure_binaries() -> Binaries:
    """Builds/downloads whatever is missing from the cache and returns the paths of everything."""
    k8s = _build("k8s")
    etcd = _build("etcd")
    kwok = _build("kwok")
    module_dir = Path((kwok / "kwok-module-dir").read_text().strip())
    if not (module_dir / "kustomize" / "stage").is_dir():
        # the module cache was cleaned since kwok was built: fetch the module zip again
        env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
        got = subprocess.run(["go", "mod", "download", "-json", f"sigs.k8s.io/kwok@{versions.KWOK_VERSION}"],
                             capture_output=True, text=True, check=False, env=env, cwd=tempfile.gettempdir())
        if got.returncode != 0:
            raise BedError(f"kwok {versions.KWOK_VERSION}", "module source gone, go mod download failed: "
                           f"{_tail(got.stderr)}")
        module_dir = Path(json.loads(got.stdout)["Dir"])
    return Binaries(
        kube_apiserver=k8s / "kube-apiserver",
        kube_controller_manager=k8s / "kube-controller-manager",
        kube_scheduler=k8s / "kube-scheduler",
        kubectl=k8s / "kubectl",
        etcd=etcd / "etcd",
        kwok=kwok / "kwok",
        kwok_module_dir=module_dir,
        prometheus=_prometheus(),
        istio_crds=_istio_crds(),
    )
