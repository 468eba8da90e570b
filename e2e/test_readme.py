"""README.md's by-hand tutorial, run as a new user would: its two command blocks, read from README.md (so
the test fails when they drift), each line as written, in order, as subprocesses, in a copy of the
checkout (the README's ``.bed`` is the copy's, a bed of this test's own), expecting ``Succeeded``.

The first block (terminal 1) ends with ``canaryd run`` in the foreground: it runs in the background here
until the end. The second block's lines run one after another; a line that only sets the shell's
environment (``eval``/``export``) passes that environment on to the next lines, as the terminal would;
``get … -w`` is read until the Canary's row says Succeeded. The only things the test adds: ``CANARYD_PORT``
(a free port instead of 8080, which another process on the machine may hold) and a clean environment
without proxy variables."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.operator import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
COPIED = ("canaryd", "e2e", "manifests", "pyproject.toml", "README.md")
SUCCEEDED_WITHIN = 15 * 60.0  # 30 s steps up to 50 %: about 6 min on a quiet machine


def bash_blocks(text: str) -> list[list[str]]:
    """The lines of every fenced ``bash`` block of a Markdown text."""
    return [block.splitlines() for block in re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M)]


def tutorial_blocks(text: str) -> tuple[list[str], list[str]]:
    """(terminal 1, terminal 2): the block that runs ``canaryd run`` on the bed, and the one that applies
    manifests/examples/; command lines only (comments are for the reader; bash drops them too)."""
    blocks = [[ln for ln in b if ln.strip() and not ln.lstrip().startswith("#")] for b in bash_blocks(text)]
    first = [b for b in blocks if any("canaryd run" in ln and "python3 -m e2e up" in ln for ln in b)]
    second = [b for b in blocks if any("kubectl apply -k manifests/examples/" in ln for ln in b)]
    assert len(first) == 1 and len(second) == 1, "README.md: the by-hand tutorial's two bash blocks not found"
    return first[0], second[0]


def test_the_tutorial_blocks_are_found() -> None:
    """The parser above on README.md: what it reads is what a reader would type (no bed needed)."""
    first, second = tutorial_blocks(README.read_text())
    assert first[-1].split("&&")[-1].strip().startswith("canaryd run")
    assert any(re.search(r"get canary \S+ -w", ln) for ln in second)
    assert second[-1].strip() == "python3 -m e2e down"


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Path]:
    """A copy of the checkout's sources (no ``.bed``, ``.git`` or caches); its bed ended afterwards."""
    root = tmp_path / "checkout"
    root.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".bed")
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=ignore)
        else:
            shutil.copy2(src, root / name)
    yield root
    subprocess.run(["python3", "-m", "e2e", "down"], cwd=root, capture_output=True, timeout=120, check=False)


def user_env(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and not k.startswith(("CANARYD_", "KUBECONFIG"))}
    env["CANARYD_PORT"] = str(port)
    return env


def sourced(line: str, env: dict[str, str], cwd: Path) -> dict[str, str]:
    """The environment after ``line`` ran in a shell with ``env`` (for ``eval``/``export`` lines)."""
    got = subprocess.run(["bash", "-c", f"set -e\n{line}\nenv -0"], cwd=cwd, env=env, capture_output=True,
                         timeout=120, check=False)
    assert got.returncode == 0, f"{line}: {got.stderr.decode(errors='replace')}"
    pairs = [item.split("=", 1) for item in got.stdout.decode().split("\0") if "=" in item]
    return dict(pairs)


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def watch_until(line: str, env: dict[str, str], cwd: Path, want: str, refuse: str,
                seconds: float) -> list[str]:
    """Run a ``-w`` line, reading its rows until one shows ``want`` or ``refuse``; ended after ``seconds``
    whatever it shows (the watch never ends by itself)."""
    proc = subprocess.Popen(["bash", "-c", line], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    timer = threading.Timer(seconds, lambda: os.killpg(proc.pid, signal.SIGTERM))
    timer.start()
    rows: list[str] = []
    try:
        assert proc.stdout is not None
        for row in proc.stdout:
            rows.append(row.rstrip())
            if want in row.split() or refuse in row.split():
                break
    finally:
        timer.cancel()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    return rows


def test_readme_tutorial_commands(bed: Any, checkout: Path, tmp_path: Path) -> None:
    """``bed``: the run's shared bed is up first, so the binaries its start builds (once, under its lock)
    are in the cache when the README's ``python3 -m e2e up`` starts this test's own bed."""
    first, second = tutorial_blocks(README.read_text())
    port = free_port()
    env = user_env(port)
    log = tmp_path / "terminal-1.log"
    with log.open("wb") as out:
        terminal1 = subprocess.Popen(["bash", "-c", "\n".join(first)], cwd=checkout, env=env, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 600  # the bed's binaries are built the first time (cached after)
        while not ready(port):
            ended = terminal1.poll()
            assert ended is None, f"terminal 1 ended {ended}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"canaryd not ready:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)

        rows: list[str] = []
        for line in second:
            if line.startswith(("eval ", "export ")):
                env = sourced(line, env, checkout)
            elif re.search(r"\s-w(\s|$)", line):
                rows = watch_until(line, env, checkout, "Succeeded", "Failed", SUCCEEDED_WITHIN)
                assert rows and "Succeeded" in rows[-1].split(), (
                    "\n".join(rows), log.read_text()[-3000:])
            else:
                got = subprocess.run(["bash", "-c", line], cwd=checkout, env=env, capture_output=True,
                                     text=True, timeout=300, check=False)
                assert got.returncode == 0, f"{line}:\n{got.stdout}\n{got.stderr}\n{log.read_text()[-3000:]}"
        # the rows went through the README's comment: Progressing, then Succeeded
        assert any("Progressing" in r.split() for r in rows), rows
    finally:
        if terminal1.poll() is None:
            os.killpg(terminal1.pid, signal.SIGTERM)
            try:
                terminal1.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(terminal1.pid, signal.SIGKILL)
                terminal1.wait(timeout=10)
