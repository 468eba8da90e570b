"""``canaryd loadtester``: a drop-in for Flagger's flagger-loadtester, safe by default.

Flagger's webhooks call it: ``POST /`` runs a command (``cmd``: asynchronous, 202; ``bash``: blocking,
only with ``--enable-bash``), ``/gate/*`` and ``/rollback/*`` answer manual gates. Differences from
Flagger's, on purpose:

* commands are split with :mod:`shlex` and run without a shell; the only program run by default is the
  built-in ``hey`` (a load generator in Python, see :mod:`canaryd.loadtester.hey`); others need
  ``--allow-command PROG``; a refused command answers 403 and never runs;
* gate state lives in a ConfigMap (``canaryd-loadtester-gates``), so it survives a restart;
* an optional bearer token (``--token``; also accepted as the password of HTTP basic auth, i.e. in the
  webhook URL ``http://token:T@flagger-loadtester.test/``, since webhooks cannot send headers);
* ``--namespace-regexp`` is searched like Go's ``MatchString`` (unanchored: write ``^test$``).
"""
