"""``python -m e2e up|down|status|url NAME|env|loadtester NS [--dir D]``: the test bed from the command line.

``up`` prints the admin kubeconfig path on stdout (progress goes to stderr) and writes ``D/bed.json``;
``url prometheus`` (or mesh, api, etcd, kubeconfig, audit_log) prints one address for scripts; ``env``
prints ``export`` lines for working by hand (kubeconfig, kubectl, the proxy for in-cluster names:
``eval "$(python3 -m e2e env)"``); ``loadtester NS`` runs the load tester of namespace NS as a bed process
(e2e/bed/loadtester.py). README.md's tutorial uses all three."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from e2e.bed import Bed, BedError, loadtester
from e2e.bed.versions import checkout_root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e", description="canaryd's e2e test bed")
    parser.add_argument("command", choices=["up", "down", "status", "url", "env", "loadtester"])
    parser.add_argument("name", nargs="?", help="for url: prometheus, mesh, api, etcd, kubeconfig, "
                        "audit_log; for loadtester: the namespace (default test)")
    parser.add_argument("--dir", type=Path, default=checkout_root() / ".bed",
                        help="bed directory (default: .bed/ in the checkout)")
    parser.add_argument("--no-mesh", action="store_true", help="up: do not start the mesh simulator")
    parser.add_argument("--no-prometheus", action="store_true", help="up: do not start Prometheus")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    bed = Bed(args.dir)
    try:
        if args.command == "up":
            bed.up(mesh=not args.no_mesh, prometheus=not args.no_prometheus)
            t = bed.state["timings"]
            print(f"bed up in {t['total']}s ({bed.dir / 'bed.json'}); kubeconfig:", file=sys.stderr)
            print(bed.kubeconfig)
        elif args.command == "url":
            keys = {"prometheus": "prometheus_url", "mesh": "mesh_url", "api": "api_url", "etcd": "etcd_url"}
            value = bed.describe().get(keys.get(args.name or "", args.name or ""))
            if not value:
                print(f"no {args.name!r} in {bed.state_path} (is the bed up? names: {', '.join(keys)}, "
                      "kubeconfig, audit_log, prometheus_query_log)", file=sys.stderr)
                return 1
            print(value)
        elif args.command == "env":
            if not bed.state:
                print(f"no bed in {bed.dir} (python3 -m e2e up)", file=sys.stderr)
                return 1
            print("\n".join(loadtester.env_lines(bed)))
        elif args.command == "loadtester":
            namespace = args.name or "test"
            port = loadtester.start(bed, namespace)
            print(f"load tester of {namespace} on 127.0.0.1:{port}, reached as "
                  f"http://{loadtester.SERVICE}.{namespace}/ through the bed's proxy; log: "
                  f"{bed.procs.log_path(loadtester.proc_name(namespace))}", file=sys.stderr)
        elif args.command == "down":
            bed.down()
            print(f"bed in {bed.dir} is down", file=sys.stderr)
        else:
            if not bed.state:
                print(f"no bed in {bed.dir}")
                return 1
            status = bed.status()
            rss = bed.rss()
            for name, running in status.items():
                mb = rss.get(name, 0) / 2**20
                print(f"{name:20s} {'running' if running else 'DOWN':8s} {mb:7.0f} MiB")
            d = bed.describe()
            print(json.dumps({k: d[k] for k in ("kubeconfig", "api_url", "prometheus_url", "mesh_url",
                                                "audit_log") if k in d}, indent=2))
            return 0 if status and all(status.values()) else 1
    except BedError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
