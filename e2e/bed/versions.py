"""Pinned versions of everything the bed runs, and where each lives in the cache: one place to bump."""

from __future__ import annotations

import os
from pathlib import Path

K8S_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
PROMETHEUS_VERSION = "2.42.0"  # upstream version of Debian bookworm's `prometheus` package
ISTIO_API_VERSION = "v1.31.4"  # Go module istio.io/api, source of the generated Istio CRDs
HELM_VERSION = "v4.3.2"  # helm.sh/helm/v4, built on demand for e2e/test_helm.py (and by .ci/run)
PROMETHEUS_OPERATOR_VERSION = "v0.85.0"  # its Go module's example/prometheus-operator-crd/ (ServiceMonitor…)
PROMETHEUS_OPERATOR_KINDS = ("ServiceMonitor", "PodMonitor")
INFLUXDB_VERSION = "v1.8.10"  # influxd with Flux, built on demand for e2e/test_provider_influxdb.py
GRAPHITE_WEB_VERSION = "1.1.8"  # Debian bookworm's graphite-web (+ graphite-carbon), unpacked on demand

ISTIO_KINDS = ("VirtualService", "DestinationRule", "Gateway")
ISTIO_SERVED = ("v1alpha3", "v1beta1", "v1")

BUILT = {"k8s": K8S_VERSION, "etcd": ETCD_VERSION, "kwok": KWOK_VERSION}


def cache_root() -> Path:
    """``~/.cache/canaryd-bed`` (XDG_CACHE_HOME honoured): outside the checkout, kept across runs."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "canaryd-bed"


def comp_dir(comp: str, version: str) -> Path:
    """The version-keyed cache dir of one component, e.g. ``k8s-v1.36.3``."""
    return cache_root() / f"{comp}-{version}"


def checkout_root() -> Path:
    """The git checkout this package lives in (``e2e/bed/`` is two levels down)."""
    return Path(__file__).resolve().parents[2]
