"""The bed's certificates, made with openssl: a CA, the API server's serving cert (SANs for loopback),
an admin client cert in system:masters, the ServiceAccount token signing key pair, and API aggregation's
front-proxy CA with the client cert the API server proxies to aggregated APIs with."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from e2e.bed.errors import BedError

PROXY_CLIENT = "front-proxy-client"  # the CN aggregated API servers accept requests from
SERVER_SANS = ("IP:127.0.0.1", "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default",
               "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local", "IP:10.96.0.1")


@dataclass(frozen=True)
class Pki:
    dir: Path

    @property
    def ca_crt(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def server_crt(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def server_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def admin_crt(self) -> Path:
        return self.dir / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.dir / "admin.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"

    @property
    def front_proxy_ca_crt(self) -> Path:
        return self.dir / "front-proxy-ca.crt"

    @property
    def proxy_client_crt(self) -> Path:
        return self.dir / "front-proxy-client.crt"

    @property
    def proxy_client_key(self) -> Path:
        return self.dir / "front-proxy-client.key"


def _openssl(pki_dir: Path, *args: str) -> None:
    try:
        got = subprocess.run(["openssl", *args], cwd=pki_dir, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise BedError("pki", "openssl is not installed (apt-get install openssl)") from exc
    if got.returncode != 0:
        last = got.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise BedError("pki", f"openssl {args[0]} failed: {last[0]}", got.stderr)


def _signed(pki_dir: Path, name: str, subject: str, ext: str, ca: str = "ca") -> None:
    _openssl(pki_dir, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", subject)
    (pki_dir / f"{name}.ext").write_text(ext)
    _openssl(pki_dir, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", "3650", "-extfile", f"{name}.ext")


def make_pki(pki_dir: Path) -> Pki:
    """Writes a fresh PKI into ``pki_dir`` (each bed has its own CA)."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    _openssl(pki_dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "3650", "-subj", "/CN=canaryd-bed-ca")
    _signed(pki_dir, "apiserver", "/CN=kube-apiserver",
            f"subjectAltName={','.join(SERVER_SANS)}\nextendedKeyUsage=serverAuth\n")
    _signed(pki_dir, "admin", "/CN=admin/O=system:masters", "extendedKeyUsage=clientAuth\n")
    _openssl(pki_dir, "genrsa", "-out", "sa.key", "2048")
    _openssl(pki_dir, "rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
    # API aggregation (an APIService backed by a test's server): a CA of its own, as kubeadm does, so the
    # proxy's client cert cannot authenticate anywhere else
    _openssl(pki_dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "front-proxy-ca.key",
             "-out", "front-proxy-ca.crt", "-days", "3650", "-subj", "/CN=canaryd-bed-front-proxy-ca")
    _signed(pki_dir, "front-proxy-client", f"/CN={PROXY_CLIENT}", "extendedKeyUsage=clientAuth\n",
            ca="front-proxy-ca")
    return Pki(pki_dir)
