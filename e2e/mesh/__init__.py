"""The mesh simulator: plays Istio's data plane and the podinfo app for the test bed, and stands in for
cluster DNS. Test code, not canaryd (it does not import canaryd, so the bed does not depend on what it tests).

Start: ``python -m e2e.mesh --kubeconfig K --port P [--background-rps 5] [--proxy-port N]``. It lists and
watches Services, Deployments (apps/v1) and VirtualServices (networking.istio.io/v1beta1) of all namespaces
through the real API server with its own small client (relist on 410, reconnect with backoff: it survives
the API server being stopped and restarted), and only starts listening once the first lists are complete,
so ``GET /_bed/healthz`` = 200 means it routes by the cluster's state. Everything binds 127.0.0.1.

Data plane (main port P and every proxy port)
    The destination is chosen like Envoy + kube-proxy would, from the request's authority (the absolute-form
    URL of a proxy request, else the ``Host`` header; any port):

    * ``<svc>`` (needs a namespace: the proxy port's, or the ``X-Bed-Namespace`` header, which wins),
      ``<svc>.<ns>``, ``<svc>.<ns>.svc``, ``<svc>.<ns>.svc.cluster.local``, or any VirtualService host
      (``app.example.com``).
    * If a VirtualService claims the host (its short hosts read in its own namespace, ``gateways`` ignored),
      the first ``http`` route whose ``match`` fits is taken (``uri``, ``method``, ``authority``,
      ``headers`` — cookies are the ``cookie`` header — ``withoutHeaders``, ``queryParams``; exact, prefix,
      regex as full match) and a destination is drawn by the current weights; ``mirror`` (with
      ``mirrorPercentage``) also sends a copy in the background. tcp/tls routes are ignored.
      ``rewrite.uri`` replaces the matched ``uri.prefix`` (else the path); ``headers.response``
      (``set``/``add``/``remove``) of the route and of the chosen destination are added to the answer
      (Set-Cookie of session affinity). A route with ``delegate: {name, namespace}`` hands the request to
      that VirtualService's routes (Istio delegation; a delegate has no hosts of its own).
    * A Service is served by the Deployments whose pod template labels match its selector, chosen in
      proportion to ``status.availableReplicas``; none available → 503 ``no healthy upstream`` (reported with
      ``reporter="source"`` only, as in Istio, where no destination proxy exists).
    * A Service registered for a real process (below) is forwarded there, whatever the port.
    * An unknown name → 502 with a text saying why; a loopback name on a proxy port → 502 (see NO_PROXY).

The app (podinfo)
    ``/`` and ``/api/info`` (JSON: ``version`` = image tag of the first container, ``hostname``,
    ``message``), ``/status/{code}``, ``/delay/{seconds}`` (≤ 30 s), ``/healthz``, ``/readyz``,
    ``/version``, ``POST /token`` → ``{"token": …}``; other paths 404. From the first container's env:
    ``BED_ERROR_PERCENT`` (that share of requests answers 500) and ``BED_LATENCY_MS`` (added to every request
    but the health probes), so a bad release is ``kubectl set env deploy/podinfo BED_ERROR_PERCENT=50``.
    A latency profile per revision (pod template): ``BED_LATENCY_MEDIAN_MS`` (each request takes a lognormal
    time with this median), ``BED_LATENCY_SIGMA`` (default 0.3) and ``BED_LATENCY_FACTOR`` (default 1; 1.3
    shifts the distribution by +30 %); the drawn time is what the metrics report. Without it: as before.

Metrics (``GET http://127.0.0.1:P/metrics``, Prometheus scrapes it every second)
    ``istio_requests_total`` and ``istio_request_duration_milliseconds`` (Istio's buckets, 0.5 ms … 1 h) with
    ``reporter``, ``source_workload`` (``bed-client``, ``bed-background``), ``source_workload_namespace``
    (the sender's namespace or ``unknown``), ``destination_workload`` (the Deployment, e.g.
    ``podinfo-primary``), ``destination_workload_namespace``, ``destination_service`` (FQDN),
    ``destination_service_name``, ``destination_app`` (pod label ``app``), ``destination_version`` (pod
    label ``version``, else the image tag), ``response_code``. Flagger's builtin request-success-rate and
    request-duration queries run unchanged.

Background traffic
    Each apex host (a Service named by a VirtualService's hosts) gets ``--background-rps`` GET / per second
    (default 20, 0 = off), dispatched in-process (no sockets), each request a task, at most 256 in flight.
    Why 20 and not 5: the e2e canaries analyse every 1 s over 10 s windows with threshold 5; at a 10 % step
    5 rps gives the canary 0.5 rps, so its series appear only after several failed "no values" checks and
    runs roll back at random. 20 rps costs ≈ 0.2 % of a core per apex host (measured).

Control API (JSON; on port P with a loopback Host: ``127.0.0.1:P``/``localhost:P``; client: ``MeshControl``)
    * ``GET /_bed/healthz`` → 200 ``OK``; ``GET /_bed/status`` → watch counters, proxies, registrations,
      background rates; ``GET /_bed/routes`` → ``{"<vs>.<ns>": [[host, weight], …]}`` as routed now.
    * ``POST /_bed/proxy {"namespace": ns}`` → ``{"port": N}``: opens (idempotently) an HTTP forward proxy
      on 127.0.0.1:N whose bare names resolve in ``ns``; ``{}`` gives the default proxy (also opened at
      start with ``--proxy-port``), which resolves qualified names only. Clients use it as
      ``HTTP_PROXY=http://127.0.0.1:N`` with ``NO_PROXY=127.0.0.1,localhost`` (aiohttp: ``trust_env=True``),
      so manifests keep in-cluster URLs such as ``http://podinfo.test:9898/``. Plain http only (no CONNECT).
    * ``POST /_bed/register {"namespace", "service", "target": "127.0.0.1:NNNN"}`` puts a real local process
      (load tester, webhook or Slack receiver) behind that Service; ``POST /_bed/unregister
      {"namespace", "service"}`` removes it.
    * ``POST /_bed/background {"host", "namespace", "rps"}`` sets (0 = stops) the background rate of a host
      as sent from ``namespace`` (an apex Service or any other host, e.g. a VirtualService host).
    Bad input → 400 with a text; unknown path → 404.
"""
