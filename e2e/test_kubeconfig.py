"""Any kubeconfig, on the bed's real API server: canaryd authenticates through an ``exec`` credential
plugin whose ExecCredentials expire 3 s after they are issued, and drives a promotion across at least two
renewals. Each plugin run mints a new ServiceAccount token of canaryd's ServiceAccount bound to a fresh
Secret (TokenRequest with boundObjectRef); the test deletes the previous run's Secret as soon as a new
credential was asked for, so the API server refuses a stale token (checked) and only renewing in time
keeps canaryd working."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from canaryd.kube.client import KubeClient
from e2e.bed.waiting import wait_for
from e2e.canaries import canary, create, podinfo, set_image, wait_phase
from e2e.operator import SERVICE_ACCOUNT, SYSTEM_NAMESPACE, Operator, mesh_proxy, wait_ready

LIFETIME_S = 3  # canaryd renews at 4/5 of a credential's life


def plugin_script(bed: Any, work: Path, prefix: str) -> Path:
    """The credential plugin: counts its runs in ``work/runs``, mints tok for Secret <prefix>-<n>."""
    plugin = work / "plugin.py"
    plugin.write_text(f"""#!{sys.executable}
import datetime, json, os, pathlib, subprocess
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
runs = pathlib.Path({str(work / "runs")!r}); n = int(runs.read_text() if runs.exists() else "0") + 1
kubectl = [{bed.kubectl_path!r}, "--kubeconfig={bed.kubeconfig}", "-n", {SYSTEM_NAMESPACE!r}]
secret = f"{prefix}-{{n}}"
subprocess.run([*kubectl, "create", "secret", "generic", secret], check=True, capture_output=True)
token = subprocess.run([*kubectl, "create", "token", {SERVICE_ACCOUNT!r}, "--duration=10m",
                        "--bound-object-kind=Secret", f"--bound-object-name={{secret}}"],
                       check=True, capture_output=True, text=True).stdout.strip()
pathlib.Path({str(work)!r}, f"token-{{n}}").write_text(token)
runs.write_text(str(n))
exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds={LIFETIME_S})
print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential",
                  "status": {{"token": token, "expirationTimestamp": exp.strftime("%Y-%m-%dT%H:%M:%SZ")}}}}))
""")
    plugin.chmod(0o755)
    return plugin


def exec_kubeconfig(bed: Any, work: Path, plugin: Path) -> Path:
    current = bed.kubectl_json("config", "view", "--minify", "--flatten", "--raw")
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "exec",
           "clusters": current["clusters"],
           "users": [{"name": "plugin", "user": {"exec": {
               "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
               "interactiveMode": "Never"}}}],
           "contexts": [{"name": "exec", "context": {"cluster": current["clusters"][0]["name"],
                                                      "user": "plugin"}}]}
    path = work / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path


def status_with(bed: Any, token: str) -> int:
    """HTTP status of a plain GET /api with this bearer token (401 once its Secret is gone)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # the question is authentication, not TLS
    req = urllib.request.Request(f"{bed.api_url}/api", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def runs(work: Path) -> int:
    path = work / "runs"
    return int(path.read_text()) if path.exists() else 0


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client(user_agent="e2e-kubeconfig")
    yield client
    await client.close()


async def test_exec_plugin_credentials_renewed_through_a_promotion(
    bed: Any, namespace: str, admin: KubeClient, canaryd_kubeconfig: str, tmp_path: Path
) -> None:
    del canaryd_kubeconfig  # the fixture installs canaryd's ServiceAccount and RBAC
    prefix = f"e2e-exec-{namespace[-5:]}"
    plugin = plugin_script(bed, tmp_path, prefix)
    config = exec_kubeconfig(bed, tmp_path, plugin)
    op = Operator(kubeconfig=str(config), namespace=namespace, prometheus_url=str(bed.prometheus_url),
                  proxy=mesh_proxy(bed.mesh_url, namespace), log_dir=tmp_path)
    revoked: list[int] = []

    async def revoke_stale() -> None:
        """As soon as run n was asked for, the Secret of run n-1 goes: its token stops working."""
        while True:
            newest = runs(tmp_path)
            for n in range(len(revoked) + 1, newest):
                await asyncio.to_thread(bed.kubectl, "-n", SYSTEM_NAMESPACE, "delete", "secret",
                                        f"{prefix}-{n}", "--wait=false")
                revoked.append(n)
            await asyncio.sleep(0.2)

    revoker = asyncio.create_task(revoke_stale())
    try:
        op.start()
        await asyncio.to_thread(wait_ready, op)
        await create(admin, namespace, podinfo(namespace), canary(namespace, threshold=10, stepWeight=5))
        await wait_phase(admin, namespace, "Initialized")
        await set_image(admin, namespace, "6.0.1")
        await wait_phase(admin, namespace, "Succeeded", seconds=120)
        seen = runs(tmp_path)
        assert seen >= 3, f"only {seen} plugin runs: fewer than two renewals"  # first + two renewals

        async def stale_refused() -> bool | None:
            code = await asyncio.to_thread(status_with, bed, (tmp_path / "token-1").read_text())
            return True if code == 401 else None

        await wait_for(stale_refused, 30, "the first token refused once its Secret is deleted")
        assert op.running()
        text = "\n".join(op.messages())
        assert (tmp_path / "token-1").read_text() not in text  # never logged
    finally:
        revoker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await revoker
        op.stop()
        for n in range(1, runs(tmp_path) + 1):
            await asyncio.to_thread(bed.kubectl, "-n", SYSTEM_NAMESPACE, "delete", "secret",
                                    f"{prefix}-{n}", "--ignore-not-found", "--wait=false")
    assert revoked  # the test did revoke tokens on the way
