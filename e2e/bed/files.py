"""The generated files of a bed: kubeconfigs, the audit policy, the fake node and Prometheus's config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from e2e.bed.pki import Pki

STAGES = Path(__file__).with_name("stages") / "pods.yaml"
NEVER_READY = "bed.canaryd.io/never-ready"
READY_AFTER = "bed.canaryd.io/ready-after"  # pod annotation: a Go duration kwok waits before making it Ready

AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}


def kubeconfig(server: str, ca: Path, user: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "bed", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": "user", "user": user}],
        "contexts": [{"name": "bed", "context": {"cluster": "bed", "user": "user"}}],
        "current-context": "bed",
    }


def write_admin_kubeconfig(path: Path, server: str, pki: Pki) -> None:
    user = {"client-certificate": str(pki.admin_crt), "client-key": str(pki.admin_key)}
    path.write_text(yaml.safe_dump(kubeconfig(server, pki.ca_crt, user), sort_keys=False))


def write_token_kubeconfig(path: Path, server: str, ca: Path, token: str) -> None:
    path.write_text(yaml.safe_dump(kubeconfig(server, ca, {"token": token}), sort_keys=False))
    path.chmod(0o600)


def write_audit_policy(path: Path) -> None:
    path.write_text(yaml.safe_dump(AUDIT_POLICY, sort_keys=False))


def node_manifest(name: str) -> dict[str, Any]:
    """A kwok-managed fake node: no taint, so workloads need no toleration."""
    capacity = {"cpu": "64", "memory": "256Gi", "pods": "500"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "type": "kwok"},
        },
        "status": {"allocatable": capacity, "capacity": capacity},
    }


PROMETHEUS_TARGETS = "prometheus-targets"  # next to prometheus.yml: file_sd files of the canaryd job


def write_prometheus_config(path: Path, *, mesh_port: int | None, query_log: Path) -> None:
    """Scrapes the mesh simulator every second, and every canaryd a test registers (``e2e/bed/scrape.py``
    writes one file_sd file per process into ``prometheus-targets/``); the query log records every query
    clients send."""
    targets = [f"127.0.0.1:{mesh_port}"] if mesh_port else []
    (path.parent / PROMETHEUS_TARGETS).mkdir(exist_ok=True)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "query_log_file": str(query_log)},
        "scrape_configs": [{
            "job_name": "mesh",
            "honor_labels": True,
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": targets}],
        }, {
            "job_name": "canaryd",
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "metrics_path": "/metrics",
            "file_sd_configs": [{"files": [str(path.parent / PROMETHEUS_TARGETS / "*.json")],
                                 "refresh_interval": "1s"}],
        }],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
