"""The mesh simulator: plays Istio's data plane and the podinfo app for the test bed, and stands in for
cluster DNS. Test code, not canaryd.

Start: ``python -m e2e.mesh --kubeconfig K --port P [--background-rps 20]``. It watches VirtualServices,
Services and Deployments through the real API server and serves, all on 127.0.0.1:

* **Data plane** (port P, and every proxy port): a request is routed by its ``Host`` header like Envoy
  would: ``<svc>``, ``<svc>.<ns>``, ``<svc>.<ns>.svc[.cluster.local]`` (any port), or a VirtualService
  host such as ``app.example.com``. For a host with a VirtualService the destination is chosen by the
  current http route weights (first route whose ``match`` fits the request's headers/cookies); otherwise
  the Service's own workload answers. A Service resolves to the Deployment whose pod template labels
  match its selector; no available replicas → 503.
* **podinfo**: ``/`` (JSON with ``version`` = the image tag), ``/status/{code}``, ``/delay/{seconds}``,
  ``/healthz``, ``/readyz``, ``POST /token``. Per-workload behaviour from the pod template's first
  container env: ``BED_ERROR_PERCENT`` (that share answers 500) and ``BED_LATENCY_MS`` (added latency).
* **Metrics** at ``http://127.0.0.1:P/metrics``: ``istio_requests_total`` and
  ``istio_request_duration_milliseconds`` with Istio's labels (``reporter="destination"``,
  ``destination_workload``, ``destination_workload_namespace``, ``destination_service``,
  ``destination_service_name``, ``destination_app``, ``destination_version``, ``response_code``,
  ``source_workload``, ``source_workload_namespace``).
* **Background traffic**: every apex host (a Service named in a VirtualService's hosts) gets
  ``--background-rps`` requests per second, dispatched in-process (no sockets).
* **Control API** (JSON, Host = the simulator's own address, path prefix ``/_bed/``):
  ``GET /_bed/healthz``; ``POST /_bed/proxy {"namespace": ns}`` → ``{"port": N}``: an HTTP proxy port
  (clients use it as ``HTTP_PROXY``) whose bare names resolve in ``ns``; ``{}`` gives the default proxy
  port, which resolves qualified names only; ``POST /_bed/register {"namespace", "service", "target":
  "127.0.0.1:NNNN"}`` puts a real local process behind that Service (any port); ``POST /_bed/background
  {"host", "namespace", "rps"}``; ``GET /_bed/routes`` → the weights the simulator currently uses.
  Clients must not send loopback addresses through the proxy: ``NO_PROXY=127.0.0.1,localhost``.
* Unknown names answer 502 with a text saying so.
"""
