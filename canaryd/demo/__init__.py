"""``canaryd demo``: the tutorial end to end on the local test bed (``e2e/``), watched live in the terminal.

``view`` turns Canary status and Events into terminal lines (pure); ``run`` drives the bed, canaryd and
kubectl. The bed lives in the repository checkout, so the demo needs one (it says so otherwise)."""
