"""Build canaryd's OCI image without a container engine: ``python3 image/build.py`` →
``dist/canaryd-<version>.oci.tar`` (an ``oci-archive`` that ``skopeo copy``, ``podman load`` and
``docker load`` accept).

Two layers, both from package registries only:

1. base: a Debian root filesystem made by ``mmdebstrap --variant=essential`` with Debian's python3, curl,
   wget and ca-certificates, plus the image's user (uid/gid 65532). Cached in
   ``~/.cache/canaryd-image/base-<key>/`` (``--refresh-base`` makes it again from today's archive).
2. app: canaryd's locked dependencies (``image/requirements.lock``, installed with ``--require-hashes``
   from PyPI wheels cached in ``~/.cache/canaryd-image/wheels-<key>/``) and canaryd itself, precompiled
   by the image's own python3 (unchecked-hash .pyc: nothing is written at run time), ``/usr/local/bin/
   canaryd`` and ``/flagger``.

Reproducible: every tar entry is sorted, owned by numeric ids, dated ``SOURCE_DATE_EPOCH`` (default
below), gzip headers carry no time, so the same base, wheels and source give the same digest."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gzip
import hashlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "image"
UID = 65532  # one uid everywhere: here, Dockerfile, manifests/deployment.yaml, manifests/loadtester
DEFAULT_EPOCH = 1767225600  # 2026-01-01T00:00:00Z: every file's mtime and the image's "created"
SUITE = "bookworm"  # python3 3.11 (canaryd needs >= 3.11)
PYTHON = "python3.11"
PACKAGES = ("python3", "curl", "wget", "ca-certificates")
DPKG_EXCLUDES = ("/usr/share/man/*", "/usr/share/doc/*", "/usr/share/info/*", "/usr/share/locale/*",
                 "/usr/share/lintian/*")
BASE_RECIPE = 1  # bump when the base's recipe changes in a way the key below does not see
IMAGE_NAME = "ghcr.io/canaryd/canaryd"
ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
       "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1")
SITE = f"usr/local/lib/{PYTHON}/dist-packages"
# left out of the base layer: runtime-mounted or machine-specific paths (their directories stay)
EMPTIED = ("dev", "proc", "sys", "run", "tmp", "var/log", "var/cache", "var/lib/apt/lists")
DROPPED = ("etc/machine-id", "etc/hostname", "etc/resolv.conf", "var/lib/dpkg/status-old",
           "var/lib/dpkg/diversions-old", "var/lib/dpkg/lock", "var/lib/dpkg/lock-frontend",
           "var/lib/dpkg/triggers/Lock")
ARCHES = {"amd64": ("amd64", "x86_64"), "arm64": ("arm64", "aarch64")}
MANYLINUX = ("manylinux_2_36", "manylinux_2_34", "manylinux_2_31", "manylinux_2_28", "manylinux_2_17",
             "manylinux2014", "manylinux_2_5", "manylinux1")


def log(msg: str) -> None:
    print(f"[image] {msg}", file=sys.stderr, flush=True)


def run(*cmd: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_ROOT_USER_ACTION": "ignore", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           **kw.pop("env", {})}
    return subprocess.run([str(c) for c in cmd], check=True, text=True, env=env, **kw)


def project_version() -> str:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return str(data["project"]["version"])


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def key_of(*parts: object) -> str:
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Options:
    cache: Path
    out: Path
    epoch: int
    arch: str  # Debian's name
    mirror: str
    refresh_base: bool


# ---- base layer: Debian root filesystem --------------------------------------------------------------


def passwd_lines() -> tuple[str, str]:
    return (f"nonroot:x:{UID}:{UID}:canaryd:/nonexistent:/usr/sbin/nologin\n", f"nonroot:x:{UID}:\n")


def build_base(opts: Options) -> Path:
    """The cached Debian root filesystem (made when missing); returns its directory."""
    key = key_of(BASE_RECIPE, SUITE, opts.arch, opts.mirror, PACKAGES, DPKG_EXCLUDES, passwd_lines())
    base = opts.cache / f"base-{key}"
    rootfs = base / "rootfs"
    if (base / ".complete").exists() and not opts.refresh_base:
        log(f"base: cached {rootfs}")
        return rootfs
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    started = time.monotonic()
    cmd: list[str] = ["mmdebstrap", "--variant=essential", f"--architectures={opts.arch}",
                      f"--include={','.join(PACKAGES)}", "--aptopt=Acquire::Retries \"3\""]
    for pattern in DPKG_EXCLUDES:
        cmd.append(f"--dpkgopt=path-exclude={pattern}")
    cmd += ["--dpkgopt=path-include=/usr/share/doc/*/copyright", SUITE, str(rootfs), opts.mirror]
    log("base: " + " ".join(cmd))
    run(*cmd, env={"SOURCE_DATE_EPOCH": str(opts.epoch)})
    user, group = passwd_lines()
    with (rootfs / "etc/passwd").open("a") as f:
        f.write(user)
    with (rootfs / "etc/group").open("a") as f:
        f.write(group)
    # the standard library's .pyc as unchecked-hash: valid whatever mtime the layer gives the sources
    in_rootfs(rootfs, "--bind", "/usr/bin/python3", "-m", "compileall", "-q", "-f", "-j", "0",
              "--invalidation-mode", "unchecked-hash", f"/usr/lib/{PYTHON}", "/usr/lib/python3/dist-packages")
    packages = run("dpkg-query", f"--admindir={rootfs / 'var/lib/dpkg'}", "-W", "-f",
                   "${Package} ${Version}\n", capture_output=True).stdout
    (base / "packages.txt").write_text("".join(sorted(packages.splitlines(keepends=True))))
    (base / ".complete").write_text(f"{time.monotonic() - started:.1f}\n")
    log(f"base: made in {time.monotonic() - started:.1f}s")
    return rootfs


# ---- app layer: locked wheels + canaryd ---------------------------------------------------------------


def pip_target_flags(opts: Options) -> list[str]:
    machine = ARCHES[opts.arch][1]
    flags = ["--only-binary=:all:", "--implementation", "cp", "--python-version", PYTHON[6:],
             "--abi", f"cp{PYTHON[6:].replace('.', '')}", "--abi", "abi3", "--abi", "none"]
    for tag in MANYLINUX:
        flags += ["--platform", f"{tag}_{machine}"]
    return flags


def fetch_wheels(opts: Options) -> Path:
    """The locked dependencies' wheels for the image's Python and architecture (cached per lock file)."""
    lock = HERE / "requirements.lock"
    wheels = opts.cache / f"wheels-{key_of(sha256_file(lock), opts.arch, PYTHON, MANYLINUX)}"
    if (wheels / ".complete").exists():
        log(f"wheels: cached {wheels}")
        return wheels
    wheels.mkdir(parents=True, exist_ok=True)
    log("wheels: pip download --require-hashes")
    run(sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes", "-r", lock,
        "-d", wheels, *pip_target_flags(opts))
    (wheels / ".complete").write_text("")
    return wheels


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version.split("+")[0])[:3])


def build_backend_installed() -> bool:
    """Whether pyproject.toml's build requirements are installed here: then the wheel is built with them,
    offline; otherwise pip fetches them into an isolated environment first (a fresh machine's Python may
    have an older setuptools and no ``wheel``: ``invalid command 'bdist_wheel'``)."""
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    for req in requires:
        name, _, low = (part.strip() for part in req.partition(">="))
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return False
        if low and _release(have) < _release(low):
            return False
    return True


def canaryd_wheel(work: Path, epoch: int) -> Path:
    """A wheel of this checkout, built from a copy (nothing written into the source tree)."""
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "canaryd", src / "canaryd",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    out = work / "wheel"
    isolation = ("--no-build-isolation",) if build_backend_installed() else ()
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w", out, src,
        env={"SOURCE_DATE_EPOCH": str(epoch)}, cwd=work)
    return next(out.glob("canaryd-*.whl"))


def stage_app(opts: Options, rootfs: Path, wheels: Path, work: Path) -> Path:
    """The app layer's files in ``work/app`` (only what it adds to the base)."""
    app = work / "app"
    site = app / SITE
    site.mkdir(parents=True)
    common = ["install", "-q", "--no-compile", "--no-deps", "--no-index", "--target", str(site),
              *pip_target_flags(opts)]
    run(sys.executable, "-m", "pip", *common, "--find-links", wheels, "--require-hashes",
        "-r", HERE / "requirements.lock", env={"PIP_FIND_LINKS": ""})
    run(sys.executable, "-m", "pip", *common, "--upgrade", canaryd_wheel(work, opts.epoch))
    shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts with the build host's shebang
    for leftover in site.glob("*.dist-info/direct_url.json"):  # names the build machine's wheel path
        leftover.unlink()
        record = leftover.with_name("RECORD")
        lines = record.read_text().splitlines(keepends=True)
        record.write_text("".join(x for x in lines if not x.startswith(f"{leftover.parent.name}/direct_url")))
    (app / "usr/local/bin").mkdir(parents=True)
    for src, dest in ((HERE / "canaryd", app / "usr/local/bin/canaryd"), (HERE / "flagger", app / "flagger")):
        shutil.copyfile(src, dest)
        dest.chmod(0o755)
    compile_bytecode(rootfs, app)
    return app


def in_rootfs(rootfs: Path, mode: str, *cmd: str | Path, binds: tuple[str | Path, ...] = ()) -> None:
    """Run ``cmd`` with ``rootfs`` as / (bubblewrap; ``mode`` --bind or --ro-bind), isolated from the host."""
    if not shutil.which("bwrap"):
        raise SystemExit("bubblewrap is missing: apt-get install bubblewrap")
    run("bwrap", mode, rootfs, "/", *binds, "--proc", "/proc", "--dev", "/dev", "--unshare-all",
        "--die-with-parent", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", *cmd)


def compile_bytecode(rootfs: Path, app: Path) -> None:
    """.pyc for the image's own python3, unchecked-hash (no mtime in them, never rewritten at run time):
    run inside the base root filesystem (bubblewrap), or by this Python when it is the same minor version."""
    target = f"/{SITE}"
    args = ["-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash"]
    if shutil.which("bwrap"):
        in_rootfs(rootfs, "--ro-bind", "/usr/bin/python3", *args, target,
                  binds=("--bind", app / "usr/local", "/usr/local"))
        return
    if f"python{sys.version_info.major}.{sys.version_info.minor}" != PYTHON:
        raise SystemExit(f"bubblewrap (apt-get install bubblewrap) or a {PYTHON} is needed to precompile")
    run(sys.executable, *args, "-s", str(app), "-p", "/", str(app / SITE))


# ---- deterministic tar layers and the OCI layout -----------------------------------------------------


class HashingWriter(io.RawIOBase):
    """Counts and hashes what goes through to ``inner`` (the uncompressed layer: its diff_id)."""

    def __init__(self, inner: gzip.GzipFile) -> None:
        self.inner, self.hash, self.size = inner, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.size

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.hash.update(data)
        self.size += len(data)
        self.inner.write(data)
        return len(data)


def walk(top: Path) -> Iterator[Path]:
    """Every path under ``top``, parents first, names sorted (a stable order)."""
    for entry in sorted(top.iterdir(), key=lambda p: p.name):
        yield entry
        if entry.is_dir() and not entry.is_symlink():
            yield from walk(entry)


def included(rel: str) -> bool:
    if rel in DROPPED:
        return False
    return not any(rel.startswith(f"{d}/") for d in EMPTIED)


def write_layer(top: Path, dest: Path, epoch: int, *, filtered: bool) -> tuple[str, str, int]:
    """gzip tar of ``top`` → ``dest``; returns (sha256 of the gzip, diff_id, gzip size)."""
    with dest.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6,
                                                 filename="") as gz:
        hashing = HashingWriter(gz)
        with tarfile.open(fileobj=hashing, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in walk(top):
                rel = path.relative_to(top).as_posix()
                if filtered and not included(rel):
                    continue
                info = tar.gettarinfo(str(path), arcname=rel)
                if info is None or info.type in (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE):
                    continue
                info.mtime = min(int(info.mtime), epoch) if filtered else epoch
                info.uname = info.gname = ""
                info.pax_headers = {}
                if not filtered:  # staged by this user: the image's files belong to root
                    info.uid = info.gid = 0
                if info.isreg():
                    with path.open("rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
        diff_id = hashing.hash.hexdigest()
    return sha256_file(dest), diff_id, dest.stat().st_size


def tar_members(top: Path, dest: Path, epoch: int) -> None:
    """The oci-archive: the layout directory as a plain tar, sorted, dated ``epoch``."""
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in walk(top):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(top).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = epoch, 0, 0, "", ""
            info.mode = 0o755 if info.isdir() else 0o644
            if info.isreg():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)


def put_blob(blobs: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return digest, len(data)


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def image_config(opts: Options, version: str, diff_ids: list[str]) -> dict[str, Any]:
    created = datetime.fromtimestamp(opts.epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "created": created,
        "architecture": ARCHES[opts.arch][0],
        "os": "linux",
        "config": {
            "User": f"{UID}:{UID}",
            "Env": list(ENV),
            "Entrypoint": ["canaryd"],
            "Cmd": ["run"],
            "WorkingDir": "/",
            "ExposedPorts": {"8080/tcp": {}},
            "Labels": {"org.opencontainers.image.title": "canaryd",
                       "org.opencontainers.image.version": version,
                       "org.opencontainers.image.licenses": "Apache-2.0"},
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in diff_ids]},
        "history": [
            {"created": created,
             "created_by": f"mmdebstrap --variant=essential {SUITE} + {' '.join(PACKAGES)}"},
            {"created": created,
             "created_by": "pip install --require-hashes -r image/requirements.lock; canaryd"},
        ],
    }


def assemble(opts: Options, version: str, layers: list[tuple[Path, bool]], work: Path) -> Path:
    layout = work / "layout"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    descriptors: list[dict[str, Any]] = []
    diff_ids: list[str] = []
    for top, filtered in layers:
        tmp = work / "layer.tar.gz"
        digest, diff_id, size = write_layer(top, tmp, opts.epoch, filtered=filtered)
        tmp.rename(blobs / digest)
        descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": f"sha256:{digest}", "size": size})
        diff_ids.append(diff_id)
        log(f"layer {top.name}: {size / 1e6:.1f} MB gzip")
    cfg_digest, cfg_size = put_blob(blobs, canonical(image_config(opts, version, diff_ids)))
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": f"sha256:{cfg_digest}", "size": cfg_size},
                "layers": descriptors}
    man_digest, man_size = put_blob(blobs, canonical(manifest))
    ref = f"{IMAGE_NAME}:{version}"
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": f"sha256:{man_digest}", "size": man_size,
                            "annotations": {"org.opencontainers.image.ref.name": version,
                                            "io.containerd.image.name": ref}}]}
    (layout / "index.json").write_bytes(canonical(index))
    (layout / "oci-layout").write_bytes(canonical({"imageLayoutVersion": "1.0.0"}))
    # docker load before Engine 25 reads only this (docker save's own format, same blobs)
    (layout / "manifest.json").write_bytes(canonical(
        [{"Config": f"blobs/sha256/{cfg_digest}", "RepoTags": [ref],
          "Layers": [f"blobs/sha256/{d['digest'][7:]}" for d in descriptors]}]))
    opts.out.mkdir(parents=True, exist_ok=True)
    dest = opts.out / f"canaryd-{version}.oci.tar"
    partial = dest.with_name(f".{dest.name}.{os.getpid()}")
    tar_members(layout, partial, opts.epoch)
    partial.replace(dest)
    (opts.out / f"canaryd-{version}.oci.tar.digest").write_text(f"sha256:{man_digest}\n")
    return dest


def host_arch() -> str:
    out = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "amd64"


def build(opts: Options) -> Path:
    started = time.monotonic()
    version = project_version()
    missing = [tool for tool in ("mmdebstrap", "bwrap") if not shutil.which(tool)]
    if missing:
        raise SystemExit(f"{' and '.join(missing)} missing: apt-get install mmdebstrap bubblewrap")
    opts.cache.mkdir(parents=True, exist_ok=True)
    lock_path = opts.cache / ".lock"
    with lock_path.open("w") as lock, tempfile.TemporaryDirectory(prefix="canaryd-image-") as tmp:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time fills or reads the cache
        rootfs = build_base(opts)
        wheels = fetch_wheels(opts)
        work = Path(tmp)
        app = stage_app(opts, rootfs, wheels, work)
        dest = assemble(opts, version, [(rootfs, True), (app, False)], work)
    packages = rootfs.parent / "packages.txt"
    if packages.exists():
        shutil.copyfile(packages, opts.out / f"canaryd-{version}.packages.txt")
    digest = (opts.out / f"canaryd-{version}.oci.tar.digest").read_text().strip()
    size = dest.stat().st_size / 1e6
    log(f"{dest} ({size:.1f} MB, manifest {digest}) in {time.monotonic() - started:.1f}s")
    return dest


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "canaryd-image"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="image/build.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output directory (default dist/)")
    parser.add_argument("--cache", type=Path, default=default_cache(), help="default ~/.cache/canaryd-image")
    parser.add_argument("--arch", default=host_arch(), choices=sorted(ARCHES),
                        help="Debian architecture (the build machine's: the base's python3 runs here)")
    parser.add_argument("--mirror", default="http://deb.debian.org/debian")
    parser.add_argument("--refresh-base", action="store_true", help="make the Debian base again")
    args = parser.parse_args(argv)
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or DEFAULT_EPOCH)
    with contextlib.suppress(BrokenPipeError):
        print(build(Options(cache=args.cache, out=args.out, epoch=epoch, arch=args.arch, mirror=args.mirror,
                            refresh_base=args.refresh_base)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
