"""Where the load tester's commands may send requests: in-cluster Service names only, unless the operator
starts it with ``--allow-external-targets``.

Pure. A host is compared label by label, never as a substring (``podinfo.test.evil.com`` is not
``podinfo.test``). Accepted:

* ``name.namespace.svc.cluster.local`` and ``name.namespace.svc`` (and longer names under them, e.g. a
  headless Service's pod): these resolve only through cluster DNS;
* ``name.namespace`` when ``namespace`` is one the load tester serves (``--namespace-regexp``, by default
  its own namespace): a two-label name may also be a public domain (``example.com``), so it is tied to the
  namespaces the load tester answers for.

Refused: IP addresses (pod IPs, ``169.254.169.254``), ``localhost`` and other single labels, any other name.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_AUTHORITY = re.compile(r"^(?:[^@\s\\]*@)?(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?$")
_NUMERIC = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_CLUSTER_SUFFIX = ("svc", "cluster", "local")
_ALLOWED = ("commands reach in-cluster Services only (name.namespace, name.namespace.svc, "
            "name.namespace.svc.cluster.local); the operator allows others with --allow-external-targets")


@dataclass(frozen=True)
class TargetRule:
    """``external``: any host (``--allow-external-targets``); ``namespaces``: the regexp (searched, as
    ``--namespace-regexp``) a ``name.namespace`` host's namespace must match; empty = any namespace."""

    external: bool = False
    namespaces: str = ""

    def host_refusal(self, host: str) -> str | None:
        """Why requests to ``host`` are refused, or None when they are allowed."""
        if self.external:
            return None
        name = host.lower().strip("[]").removesuffix(".")
        if not name:
            return "a URL without a host"
        try:
            ipaddress.ip_address(name)
        except ValueError:
            pass
        else:
            return f"target {name} is an IP address; {_ALLOWED}"
        labels = name.split(".")
        if _NUMERIC.match(labels[-1]):  # 127.1, 0x7f.1: what inet_aton reads as an IPv4 address
            return f"target {name} is an IP address; {_ALLOWED}"
        if not all(_LABEL.match(label) for label in labels):
            return f"target {name} is not a DNS name of a Service; {_ALLOWED}"
        if tuple(labels[-3:]) == _CLUSTER_SUFFIX and len(labels) >= 5:
            return None
        if labels[-1] == "svc" and len(labels) >= 3:
            return None
        if len(labels) == 2:
            if not self.namespaces or re.search(self.namespaces, labels[1]):
                return None
            return (f"target {name}: namespace {labels[1]} is not served by this load tester "
                    f"(--namespace-regexp); write {name}.svc.cluster.local for a Service there")
        return f"target {name} is not an in-cluster Service name; {_ALLOWED}"

    def url_refusal(self, url: str, *, default_scheme: str = "") -> str | None:
        """Why requests to ``url`` are refused, or None; ``default_scheme`` for scheme-less URLs (curl's)."""
        if self.external:
            return None
        if default_scheme and "://" not in url:
            url = f"{default_scheme}://{url}"
        authority = re.split(r"[/?#]", url.partition("://")[2], maxsplit=1)[0]
        if "\\" in url or not _AUTHORITY.match(authority):
            # one reading for every URL parser (Python's, yarl's, curl's): no second @, no backslash, no
            # percent-encoding in the host
            return f"URL {url!r} has a host part that is not a plain name and port"
        try:
            host = urlsplit(url).hostname or ""
        except ValueError as err:
            return f"invalid URL {url!r}: {err}"
        return self.host_refusal(host)
