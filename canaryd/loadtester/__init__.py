"""``canaryd loadtester``: a drop-in for Flagger's flagger-loadtester, safe by default.

Flagger's webhooks call it: ``POST /`` runs a command (``cmd``: asynchronous, 202; ``bash``: blocking,
only with ``--enable-bash``), ``/gate/*`` and ``/rollback/*`` answer manual gates. Differences from
Flagger's, on purpose:

* a token is required (read from ``--token-file``, a mounted Secret; ``--insecure`` to go without): a
  bearer token, or the password of HTTP basic auth, i.e. the webhook URL
  ``http://token:T@flagger-loadtester.test/``, since webhooks cannot send headers (:mod:`.secure`);
* commands are split with :mod:`shlex` and run without a shell; the only program run by default is the
  built-in ``hey`` (a load generator in Python, see :mod:`canaryd.loadtester.hey`); others need
  ``--allow-command PROG`` and pass their argument allow-list where one ships (curl, :mod:`.argpolicy`);
  hey and curl reach in-cluster Services only (:mod:`.targets`); a refused command answers 403 and never
  runs, a non-printable character in it 400;
* gate state lives in a ConfigMap (``canaryd-loadtester-gates``), so it survives a restart; gates expire
  (``--gate-ttl``) and are capped (``--max-gates``) so it never fills;
* ``--namespace-regexp`` is searched like Go's ``MatchString`` (unanchored: write ``^test$``) and defaults
  to the load tester's own namespace.
"""
