"""An external cluster (kind + Istio) given by ``CANARYD_E2E_KUBECONFIG`` and ``CANARYD_E2E_PROMETHEUS``:
the suite then runs against it instead of starting a bed."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from e2e.bed.cluster import Cluster
from e2e.bed.errors import BedError


class ExternalCluster(Cluster):
    """A cluster someone else runs: no component controls, no audit log, no mesh simulator unless
    ``CANARYD_E2E_MESH_URL`` names one."""

    def __init__(self, kubeconfig: str, prometheus_url: str, mesh_url: str | None = None,
                 kubectl: str | None = None) -> None:
        self._kubeconfig = kubeconfig
        self._prometheus_url = prometheus_url.rstrip("/")
        self._mesh_url = mesh_url
        found = kubectl or shutil.which("kubectl")
        if found is None:
            raise BedError("kubectl", "not on PATH (set CANARYD_E2E_KUBECTL)")
        self._kubectl = found
        self.dir = Path(tempfile.mkdtemp(prefix="canaryd-e2e-external-"))

    @property
    def kubeconfig(self) -> str:
        return self._kubeconfig

    @property
    def kubectl_path(self) -> str:
        return self._kubectl

    @property
    def prometheus_url(self) -> str | None:
        return self._prometheus_url

    @property
    def mesh_url(self) -> str | None:
        return self._mesh_url


def external_from_env() -> ExternalCluster | None:
    kube = os.environ.get("CANARYD_E2E_KUBECONFIG")
    prom = os.environ.get("CANARYD_E2E_PROMETHEUS")
    if not kube and not prom:
        return None
    if not (kube and prom):
        raise BedError("external cluster", "set both CANARYD_E2E_KUBECONFIG and CANARYD_E2E_PROMETHEUS")
    return ExternalCluster(kube, prom, os.environ.get("CANARYD_E2E_MESH_URL"),
                           os.environ.get("CANARYD_E2E_KUBECTL"))
