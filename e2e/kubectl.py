"""Running the bed's kubectl from tests: the way users meet the CRDs and RBAC (apply, get, wait)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


def kubectl_binary() -> Path:
    """``$CANARYD_KUBECTL``, else the bed's kubectl in ``~/.cache/canaryd-bed/k8s-<version>/`` (kept free
    of imports from ``e2e.bed`` so these helpers work while the bed package changes)."""
    if os.environ.get("CANARYD_KUBECTL"):
        return Path(os.environ["CANARYD_KUBECTL"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "canaryd-bed"
    found = sorted(base.glob("k8s-*/kubectl"))
    assert found, f"no kubectl under {base}/k8s-*/ (build the bed: python -m e2e up)"
    return found[-1]


@dataclass(frozen=True)
class Kubectl:
    kubeconfig: str

    def run(
        self, *args: str, stdin: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl; never raises on a non-zero exit (tests assert on returncode and stderr)."""
        return subprocess.run(
            [str(kubectl_binary()), "--kubeconfig", self.kubeconfig, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
        """Run kubectl and return stdout; fail the test with stderr on a non-zero exit."""
        p = self.run(*args, stdin=stdin, timeout=timeout)
        assert p.returncode == 0, f"kubectl {' '.join(args)} failed: {p.stderr}"
        return p.stdout

    def apply(self, obj: dict[str, Any] | str) -> subprocess.CompletedProcess[str]:
        text = obj if isinstance(obj, str) else yaml.safe_dump(obj)
        return self.run("apply", "-f", "-", stdin=text)

    def get_json(self, *args: str) -> Any:
        return yaml.safe_load(self.ok("get", "-o", "json", *args))

    def with_token(self, token: str, path: Path) -> Kubectl:
        """A kubectl that authenticates with ``token`` only (same server and CA as this one)."""
        cfg = yaml.safe_load(Path(self.kubeconfig).read_text())
        ctx_name = cfg.get("current-context")
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [cluster],
                    "users": [{"name": "token-user", "user": {"token": token}}],
                    "contexts": [
                        {"name": "token", "context": {"cluster": cluster["name"], "user": "token-user"}}
                    ],
                    "current-context": "token",
                }
            )
        )
        return Kubectl(str(path))
