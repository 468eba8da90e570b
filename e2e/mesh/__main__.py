"""``python -m e2e.mesh --kubeconfig K --port P``: run the mesh simulator (see ``e2e/mesh/__init__.py``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from e2e.mesh.app import main

parser = argparse.ArgumentParser(prog="python -m e2e.mesh")
parser.add_argument("--kubeconfig", required=True)
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--background-rps", type=float, default=20.0, help="requests/s per apex host; 0 = off")
args = parser.parse_args()
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
with contextlib.suppress(KeyboardInterrupt):
    asyncio.run(main(args.kubeconfig, args.port, args.background_rps))
