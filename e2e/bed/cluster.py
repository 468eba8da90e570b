"""What tests do with any cluster, the local bed or an external one: kubectl, canaryd's client, and
kubeconfigs for ServiceAccount tokens."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from e2e.bed.audit import AuditEvent
from e2e.bed.errors import BedError

if TYPE_CHECKING:
    from canaryd.kube.client import KubeClient


class Cluster:
    """Base of ``Bed`` and ``ExternalCluster``: subclasses set the kubeconfig, kubectl and work dir."""

    dir: Path

    @property
    def kubeconfig(self) -> str:
        raise NotImplementedError

    @property
    def kubectl_path(self) -> str:
        raise NotImplementedError

    @property
    def prometheus_url(self) -> str | None:
        raise NotImplementedError

    @property
    def mesh_url(self) -> str | None:
        raise NotImplementedError

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, kubeconfig: str | None = None,
                timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Runs kubectl against this cluster (admin kubeconfig unless given); raises if ``check``."""
        env = {**os.environ, "KUBECACHEDIR": str(self.dir / "kubectl-cache")}
        cmd = [self.kubectl_path, f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]
        got = subprocess.run(cmd, input=input, capture_output=True, text=True, env=env, timeout=timeout,
                             check=False)
        if check and got.returncode != 0:
            raise subprocess.CalledProcessError(got.returncode, cmd, got.stdout, got.stderr)
        return got

    def kubectl_json(self, *args: str) -> Any:
        """``kubectl … -o json`` parsed."""
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def apply(self, manifest: str | dict[str, Any], namespace: str | None = None) -> None:
        """``kubectl apply`` of a YAML string or an object."""
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        self.kubectl(*(["-n", namespace] if namespace else []), "apply", "-f", "-", input=text)

    async def admin_client(self, user_agent: str = "canaryd-e2e") -> KubeClient:
        """canaryd's own client with the admin credentials; close it when done."""
        from canaryd.kube.client import KubeClient

        return await KubeClient.from_config(self.kubeconfig, user_agent=user_agent)

    def kubeconfig_for_serviceaccount(self, namespace: str, name: str, *, duration: str = "2h") -> str:
        """Creates the ServiceAccount if needed, gets a token from the TokenRequest API (``kubectl create
        token``) and writes a kubeconfig that authenticates with it; returns its path."""
        made = self.kubectl("-n", namespace, "create", "serviceaccount", name, check=False)
        if made.returncode != 0 and not any(t in made.stderr for t in ("AlreadyExists", "already exists")):
            raise BedError("serviceaccount", f"cannot create {namespace}/{name}: {made.stderr.strip()}")
        token = self.kubectl("-n", namespace, "create", "token", name, f"--duration={duration}").stdout
        token = token.strip()
        current = self.kubectl_json("config", "view", "--minify", "--flatten", "--raw")
        user = f"{namespace}.{name}"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": current["clusters"],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "sa",
                          "context": {"cluster": current["clusters"][0]["name"], "user": user}}],
            "current-context": "sa",
        }
        path = self.dir / "sa" / f"{namespace}.{name}.kubeconfig"
        path.parent.mkdir(parents=True, exist_ok=True)
        # atomic: test processes sharing the bed each write it (every token stays valid)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
        tmp.chmod(0o600)
        tmp.replace(path)
        return str(path)

    def audit_events(self, *, username: str | None = None, user_agent_prefix: str | None = None,
                     stage: str | None = "ResponseComplete") -> list[AuditEvent]:
        raise BedError("audit", "this cluster's audit log is not readable by the tests")

    def stop(self, name: str) -> None:
        raise BedError(name, "components of an external cluster cannot be stopped by the tests")

    def start(self, name: str) -> None:
        raise BedError(name, "components of an external cluster cannot be started by the tests")
