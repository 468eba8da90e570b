"""One version, from the package metadata: ``canaryd --version`` / ``-version``, the User-Agent default,
the ``flagger_info`` metric, and the fallback for a checkout that was never installed."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from canaryd.runtime.metrics import Metrics
from canaryd.settings import Settings
from canaryd.version import UNKNOWN, checkout_version, user_agent, version

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
DECLARED = tomllib.loads(PYPROJECT.read_text())["project"]["version"]


def test_version_is_the_declared_one() -> None:
    assert version() == DECLARED
    assert checkout_version(PYPROJECT) == DECLARED


@pytest.mark.parametrize("flag", ["--version", "-version"])
def test_command_prints_the_version(flag: str) -> None:
    done = subprocess.run([sys.executable, "-m", "canaryd", flag], capture_output=True, text=True, timeout=60,
                          check=False)
    assert (done.returncode, done.stdout) == (0, f"{DECLARED}\n"), done.stderr


def test_user_agent_and_build_info_carry_it() -> None:
    assert user_agent() == Settings().user_agent == f"canaryd/{DECLARED}"
    assert user_agent("canaryd-loadtester") == f"canaryd-loadtester/{DECLARED}"
    text = generate_latest(Metrics().registry).decode()
    assert f'flagger_info{{mesh_provider="istio",version="{DECLARED}"}} 1.0' in text


@pytest.mark.parametrize(("content", "expected"), [
    ('[project]\nname = "canaryd"\nversion = "9.8.7"\n', "9.8.7"),
    ('[project]\nname = "canaryd"\n', UNKNOWN),
    ("not toml [", UNKNOWN),
    (None, UNKNOWN),
])
def test_checkout_fallback(tmp_path: Path, content: str | None, expected: str) -> None:
    path = tmp_path / "pyproject.toml"
    if content is not None:
        path.write_text(content)
    assert checkout_version(path) == expected
