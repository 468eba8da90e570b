"""Flagger v1.44's own Deployment arguments start canaryd: the exact ``args:`` of its kustomize/istio
Deployment and of its Helm chart (defaults, and the Istio install with leader election), from
tests/fixtures/flagger_v1_44_args.yaml, given to canaryd's ``/flagger`` entry point (Flagger's flags, no
subcommand). Each run becomes ready and drives a canary to Succeeded. On the shared bed each process also
gets ``-kubeconfig`` (canaryd's ServiceAccount), ``-namespace`` (the test's own, so it never touches
another test's canaries), a free ``-port`` and the bed's ``-metrics-server``, appended in Flagger's
spelling after the fixture's args (the last value wins, as with Go's flag package)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from canaryd.kube.client import KubeClient
from canaryd.kube.resources import LEASE
from e2e.bed.waiting import wait_for
from e2e.canaries import canary, create, podinfo, set_image, wait_phase
from e2e.operator import ROOT, Operator, free_port, grant_leases, wait_ready

FIXTURE = yaml.safe_load((ROOT / "tests" / "fixtures" / "flagger_v1_44_args.yaml").read_text())
FLAGGER_ENTRY = "import sys; from canaryd.cli import flagger_main; sys.exit(flagger_main())"


class FlaggerArgsOperator(Operator):
    """canaryd started as Flagger's Deployment starts ``./flagger``: Flagger's flags only."""

    def __init__(self, args: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.flagger_args = args

    def start(self, **env: str) -> Operator:
        self.port = free_port()
        full = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        full.update(env)
        cmd = [sys.executable, "-c", FLAGGER_ENTRY, *self.flagger_args, f"-kubeconfig={self.kubeconfig}",
               f"-namespace={self.namespace}", f"-port={self.port}", f"-metrics-server={self.prometheus_url}"]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=full)
        return self


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client(user_agent="e2e-flagger-args")
    yield client
    await client.close()


@pytest.fixture
def flagger_args_operator(bed: Any, canaryd_kubeconfig: str, tmp_path: Path
                          ) -> Iterator[Callable[[str, list[str]], FlaggerArgsOperator]]:
    started: list[FlaggerArgsOperator] = []

    def make(namespace: str, args: list[str]) -> FlaggerArgsOperator:
        op = FlaggerArgsOperator(list(args), kubeconfig=canaryd_kubeconfig, namespace=namespace,
                                 prometheus_url=str(bed.prometheus_url), proxy=None, log_dir=tmp_path)
        started.append(op)
        op.start()
        wait_ready(op)
        return op

    yield make
    for op in started:
        op.stop()


async def promote(admin: KubeClient, namespace: str) -> None:
    await create(admin, namespace, podinfo(namespace), canary(namespace, threshold=10))
    await wait_phase(admin, namespace, "Initialized")
    await set_image(admin, namespace, "6.0.1")
    await wait_phase(admin, namespace, "Progressing")
    await wait_phase(admin, namespace, "Succeeded", seconds=90)


@pytest.mark.parametrize("deployment", ["kustomize_istio", "helm_defaults"])
async def test_flagger_deployment_args_run_a_promotion(
    deployment: str, namespace: str, admin: KubeClient,
    flagger_args_operator: Callable[[str, list[str]], FlaggerArgsOperator],
) -> None:
    op = flagger_args_operator(namespace, FIXTURE[deployment])
    await promote(admin, namespace)
    messages = op.messages()
    assert not any("accepted and ignored" in m for m in messages)  # every one of these flags is used
    assert op.running()


async def test_helm_leader_election_args_elect_in_the_watched_namespace(
    bed: Any, namespace: str, admin: KubeClient,
    flagger_args_operator: Callable[[str, list[str]], FlaggerArgsOperator],
) -> None:
    """The chart's ``-enable-leader-election=true -leader-election-namespace=<release ns>`` with
    ``-namespace``: as Flagger, the Lease lives in the watched namespace; canaryd holds it and promotes."""
    grant_leases(bed, namespace)
    op = flagger_args_operator(namespace, FIXTURE["helm_istio_leader_election"])

    async def held() -> bool | None:
        items, _ = await admin.list(LEASE, namespace)
        return True if any((x.get("spec") or {}).get("holderIdentity") for x in items) else None

    await wait_for(held, 30, f"a held Lease in {namespace}")
    await promote(admin, namespace)
    assert op.running()


async def test_unused_flags_warned_and_other_mesh_refused(
    namespace: str, flagger_args_operator: Callable[[str, list[str]], FlaggerArgsOperator],
    canaryd_kubeconfig: str,
) -> None:
    """Flags canaryd has no use for start it with one warning naming them; another mesh stops it with one
    line naming the supported one."""
    op = flagger_args_operator(namespace, [*FIXTURE["kustomize_istio"], "-threadiness=4", "-v=2"])
    warned = [m for m in op.messages() if "accepted and ignored" in m]
    assert warned and "-threadiness=4 -v=2" in warned[0]
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", FLAGGER_ENTRY, "-mesh-provider=linkerd",
                         f"-kubeconfig={canaryd_kubeconfig}"], capture_output=True, text=True, timeout=60,
        check=False, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr == ("canaryd: -mesh-provider=linkerd is not supported: canaryd drives Istio only "
                           "(-mesh-provider=istio)\n")
