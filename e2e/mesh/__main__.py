"""``python -m e2e.mesh --kubeconfig K --port P``: run the mesh simulator (see ``e2e/mesh/__init__.py``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from e2e.mesh.server import main

parser = argparse.ArgumentParser(prog="python -m e2e.mesh", description="the test bed's simulated Istio mesh")
parser.add_argument("--kubeconfig", required=True, help="admin kubeconfig of the bed (client cert or token)")
parser.add_argument(
    "--port", type=int, required=True, help="main port on 127.0.0.1 (data plane, /metrics, /_bed/)"
)
parser.add_argument(
    "--background-rps",
    type=float,
    default=20.0,
    help="background GET / per apex host per second (default 20; 0 = off)",
)
parser.add_argument(
    "--proxy-port",
    type=int,
    default=None,
    help="open the default proxy (qualified names only) on this port at start (0 = any free)",
)
args = parser.parse_args()
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
with contextlib.suppress(KeyboardInterrupt):
    asyncio.run(main(args.kubeconfig, args.port, args.background_rps, args.proxy_port))
