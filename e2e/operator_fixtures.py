"""pytest fixtures that run canaryd for a test (registered from conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from e2e.operator import (
    SYSTEM_NAMESPACE,
    Operator,
    grant_leases,
    install_rbac,
    leader_election_namespace,
    mesh_proxy,
    wait_ready,
)


@pytest.fixture(scope="session")
def canaryd_kubeconfig(bed: Any) -> str:
    """A kubeconfig with canaryd's ServiceAccount token; RBAC from manifests/ applied once."""
    return install_rbac(bed)


@pytest.fixture
def operator_factory(
    bed: Any, canaryd_kubeconfig: str, tmp_path: Path
) -> Iterator[Callable[..., Operator]]:
    """``operator_factory(namespace)`` starts canaryd for that namespace (ready when it returns); every
    process it started is stopped after the test. With ``--leader-elect`` in ``args`` the lease's
    namespace gets manifests/rbac/'s leader-election Role (Leases are namespaced, never cluster-wide)."""
    started: list[Operator] = []

    def make(namespace: str, *, start: bool = True, env: dict[str, str] | None = None,
             args: Sequence[str] = (), name: str = "") -> Operator:
        lease_ns = leader_election_namespace(args)
        if lease_ns is not None and lease_ns != SYSTEM_NAMESPACE:
            grant_leases(bed, lease_ns)
        op = Operator(kubeconfig=canaryd_kubeconfig, namespace=namespace,
                      prometheus_url=str(bed.prometheus_url), proxy=mesh_proxy(bed.mesh_url, namespace),
                      log_dir=tmp_path, extra_env=env, extra_args=args, name=name)
        started.append(op)
        if start:
            op.start()
            wait_ready(op)
        return op

    yield make
    for op in started:
        op.stop()


@pytest.fixture
def operator(operator_factory: Callable[..., Operator], namespace: str) -> Operator:
    """canaryd running for the test's namespace."""
    return operator_factory(namespace)
