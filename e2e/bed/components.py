"""How each component of the bed is started (program, flags, environment) and probed for readiness.

Flags and their reasons: e2e/README.md, "Control-plane flags". Everything on 127.0.0.1, RBAC,
ServiceAccount token signing, the audit log, no watch cache for the resources that must answer 410 after an
etcd compaction."""

from __future__ import annotations

import os
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from e2e.bed import files, versions
from e2e.bed.pki import PROXY_CLIENT, Pki

if TYPE_CHECKING:
    from e2e.bed.bed import Bed


def mesh_available() -> bool:
    """The mesh simulator package exists in this checkout (it landed after the bed)."""
    return (versions.checkout_root() / "e2e" / "mesh" / "__main__.py").exists()


def _get(url: str, ctx: ssl.SSLContext | None = None, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (OSError, ValueError) as exc:
        return 0, str(exc)


def _insecure() -> ssl.SSLContext:
    """For the controller-manager's and scheduler's self-signed serving certs (health probes only)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def aggregation_flags(p: Pki) -> list[str]:
    """API aggregation (``APIService`` objects served by a test's server), when the bed's PKI has the
    front-proxy certificates (a bed made before they existed starts without it)."""
    if not p.proxy_client_crt.exists():
        return []
    return [f"--requestheader-client-ca-file={p.front_proxy_ca_crt}",
            f"--requestheader-allowed-names={PROXY_CLIENT}",
            "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={p.proxy_client_crt}", f"--proxy-client-key-file={p.proxy_client_key}"]


def command(bed: Bed, name: str) -> tuple[list[str], dict[str, str] | None, Path | None]:
    """Program, arguments, environment and working dir of one component of ``bed``."""
    b, p, ports, d = bed.bins(), bed.pki, bed.state["ports"], bed.dir
    if name == "etcd":
        peer = f"http://127.0.0.1:{ports['etcd_peer']}"
        return [str(b.etcd), "--name=bed", f"--data-dir={bed.state['etcd_data']}",
                f"--listen-client-urls={bed.etcd_url}", f"--advertise-client-urls={bed.etcd_url}",
                f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=bed={peer}", "--unsafe-no-fsync=true",
                "--quota-backend-bytes=2147483648", "--log-level=warn"], None, d
    if name == "apiserver":
        cache = ",".join(f"{r}#0" for r in bed.state.get("uncached", []))
        return [str(b.kube_apiserver), f"--etcd-servers={bed.etcd_url}",
                "--bind-address=127.0.0.1", f"--secure-port={ports['apiserver']}",
                "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
                f"--tls-cert-file={p.server_crt}", f"--tls-private-key-file={p.server_key}",
                f"--client-ca-file={p.ca_crt}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={p.sa_pub}",
                f"--service-account-signing-key-file={p.sa_key}",
                "--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=RBAC",
                "--disable-admission-plugins=ServiceAccount", "--allow-privileged=true",
                "--enable-priority-and-fairness=false", "--profiling=false",
                f"--audit-policy-file={d / 'audit-policy.yaml'}", f"--audit-log-path={bed.audit_log}",
                "--audit-log-format=json", "--audit-log-mode=blocking", "--audit-log-maxsize=0",
                f"--cert-dir={d / 'apiserver-certs'}",
                *([f"--watch-cache-sizes={cache}"] if cache else []), *aggregation_flags(p),
                "--v=1", *bed.state.get("extra_apiserver_args", [])], None, d
    if name in ("controller-manager", "scheduler"):
        common = [f"--kubeconfig={bed.kubeconfig}", f"--authentication-kubeconfig={bed.kubeconfig}",
                  f"--authorization-kubeconfig={bed.kubeconfig}",
                  "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
                  "--bind-address=127.0.0.1", f"--secure-port={ports[name]}", "--leader-elect=false",
                  f"--cert-dir={d / (name + '-certs')}", "--v=1"]
        if name == "scheduler":
            return [str(b.kube_scheduler), *common], None, d
        return [str(b.kube_controller_manager), *common, "--controllers=*",
                "--use-service-account-credentials=false",
                f"--service-account-private-key-file={p.sa_key}", f"--root-ca-file={p.ca_crt}",
                "--horizontal-pod-autoscaler-sync-period=5s",
                # the defaults (20 requests/s, 5 concurrent syncs) create about 10 pods a second: the
                # benchmark's 1,000 canaries (2,000 Deployments) would wait minutes on the bed itself
                "--kube-api-qps=300", "--kube-api-burst=600", "--concurrent-deployment-syncs=20",
                "--concurrent-replicaset-syncs=20"], None, d
    if name == "kwok":
        stages = b.kwok_module_dir / "kustomize" / "stage"
        home = d / "kwok-home"  # kwok reads ~/.kwok/kwok.yaml: keep the user's out of the bed
        home.mkdir(exist_ok=True)
        return [str(b.kwok), f"--kubeconfig={bed.kubeconfig}",
                f"--config={stages / 'node' / 'fast'}",
                f"--config={stages / 'node' / 'heartbeat-with-lease'}",
                f"--config={files.STAGES}", "--manage-all-nodes=true", "--node-lease-duration-seconds=40",
                "--node-ip=127.0.0.1", "--cidr=10.0.0.0/16"], {**os.environ, "HOME": str(home)}, d
    if name == "mesh":
        root = versions.checkout_root()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            x for x in (str(root), os.environ.get("PYTHONPATH", "")) if x)}
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env.pop(var, None)
        return [sys.executable, "-m", "e2e.mesh", "--kubeconfig", bed.kubeconfig,
                "--port", str(ports["mesh"])], env, root
    # prometheus
    files.write_prometheus_config(d / "prometheus.yml",
                                  mesh_port=ports["mesh"] if mesh_available() else None,
                                  query_log=bed.prometheus_query_log)
    return [str(b.prometheus), f"--config.file={d / 'prometheus.yml'}",
            f"--storage.tsdb.path={d / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{ports['prometheus']}", "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=6h", "--log.level=warn"], None, d


def ready(bed: Bed, name: str) -> bool:
    """One readiness probe of a component (True = ready now)."""
    ports = bed.state["ports"]
    if name == "etcd":
        code, body = _get(f"{bed.etcd_url}/health")
        return code == 200 and '"true"' in body
    if name == "apiserver":
        code, _ = _get(f"{bed.api_url}/readyz", ssl.create_default_context(cafile=str(bed.pki.ca_crt)))
        return code == 200
    if name in ("controller-manager", "scheduler"):
        code, _ = _get(f"https://127.0.0.1:{ports[name]}/healthz", _insecure())
        return code == 200
    if name == "kwok":
        return True  # kwok has no health endpoint: the node turning Ready proves it works
    if name == "mesh":
        return _get(f"http://127.0.0.1:{ports['mesh']}/_bed/healthz")[0] == 200
    return _get(f"http://127.0.0.1:{ports['prometheus']}/-/ready")[0] == 200
