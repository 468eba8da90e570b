"""``canaryd demo`` outside a checkout (as from a wheel, which has no ``e2e`` package): a one-line reason
naming the missing bed and how to run it, never a traceback (README.md, "the main job")."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_without_the_checkouts_bed_says_why(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "canaryd", tmp_path / "canaryd",
                    ignore=shutil.ignore_patterns("__pycache__"))  # the package alone, as a wheel installs it
    code = ("from canaryd.demo.run import DemoError, import_bed\n"
            "try:\n    import_bed()\nexcept DemoError as err:\n    print(err)\n    raise SystemExit(1)\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60, env={"PYTHONPATH": str(tmp_path)})
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "the demo runs on the test bed in the repository's e2e/ directory, which is not importable here" \
        in p.stdout and "No module named 'e2e'" in p.stdout and "Traceback" not in p.stderr
