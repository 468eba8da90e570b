"""The load tester's HTTP API, Flagger's paths and answers: ``POST /`` (tasks), ``/gate/*``,
``/rollback/*``, plus ``/healthz`` and ``/metrics``. Guards run in this order: bearer token (401),
namespace filter (403 ``Forbidden``), payload (400, non-printable characters in a command included),
command policy (403), capacity (503; 507 for a gate beyond ``--max-gates``)."""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from canaryd.kube.errors import ApiError
from canaryd.loadtester.gates import GateFull, GateStore
from canaryd.loadtester.metrics import LoadTesterMetrics
from canaryd.loadtester.payload import Payload, PayloadError, parse_payload, parse_task
from canaryd.loadtester.policy import Command, CommandPolicy
from canaryd.loadtester.runner import Busy, Runner
from canaryd.loadtester.secure import presented_token

MAX_BODY = 1024 * 1024
_OPEN_PATHS = frozenset({"/healthz", "/metrics"})
_GATE_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,244}$")  # with "rollback." within a ConfigMap key's 253
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ApiConfig:
    """The operator's guards: ``token`` empty = no authentication (the command line allows that only with
    ``--insecure``); ``namespace_regexp`` empty = all (the command line defaults to its own namespace)."""

    enable_bash: bool = False
    namespace_regexp: str = ""
    token: str = ""


class LoadTesterApi:
    """Request handlers over a :class:`Runner` and a :class:`GateStore`."""

    def __init__(self, config: ApiConfig, policy: CommandPolicy, runner: Runner, gates: GateStore,
                 metrics: LoadTesterMetrics, log: logging.Logger) -> None:
        self.config = config
        self.policy = policy
        self.runner = runner
        self.gates = gates
        self.metrics = metrics
        self.log = log
        self._ns = re.compile(config.namespace_regexp) if config.namespace_regexp else None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._auth])
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics_page)
        app.router.add_route("*", "/", self.task)
        app.router.add_route("*", "/gate/approve", self.constant("gate", "approve", 200, "OK"))
        app.router.add_route("*", "/gate/halt", self.constant("gate", "halt", 403, "Forbidden"))
        for gate, prefix in (("gate", ""), ("rollback", "rollback.")):
            app.router.add_route("*", f"/{gate}/check", self.check(gate, prefix))
            app.router.add_route("*", f"/{gate}/open", self.toggle(gate, prefix, True))
            app.router.add_route("*", f"/{gate}/close", self.toggle(gate, prefix, False))
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        token = self.config.token
        if token and request.path not in _OPEN_PATHS:
            if not hmac.compare_digest(presented_token(request.headers).encode(), token.encode()):
                self.metrics.denied.labels("unauthorized").inc()
                return web.Response(status=401, text="Unauthorized",
                                    headers={"WWW-Authenticate": 'Bearer realm="flagger-loadtester"'})
        return await handler(request)

    async def _payload(self, request: web.Request, *, allow_empty: bool = False) -> Payload:
        """The decoded payload of an allowed namespace; raises :class:`PayloadError`."""
        payload = parse_payload(await request.read(), allow_empty=allow_empty)
        if self._ns is not None and not self._ns.search(payload.namespace):
            self.metrics.denied.labels("namespace").inc()
            self.log.info("namespace %s refused by --namespace-regexp", payload.namespace,
                          extra={"canary": payload.canary})
            raise PayloadError(403, "Forbidden")
        return payload

    async def healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def metrics_page(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def task(self, request: web.Request) -> web.Response:
        kind, canary = "unknown", ""
        try:
            payload = await self._payload(request)
            canary = payload.canary
            task = parse_task(payload)
            kind = task.type
            if task.type == "bash":
                return await self._bash(payload, task.cmd, task.log_output, task.return_output)
            resolved = self.policy.resolve(task.cmd)
            if not isinstance(resolved, Command):
                raise PayloadError(resolved.status, resolved.reason)
            for note in resolved.hey.notes if resolved.hey else ():
                self.log.info("hey: %s", note, extra={"canary": payload.canary})
            started = self.runner.start((payload.canary, task.cmd), resolved.argv, kind="cmd",
                                        text=task.cmd, log_output=task.log_output)
        except PayloadError as err:
            return self._refuse(kind, err, canary)
        except Busy as err:
            return web.Response(status=503, text=f"command not started: {err}")
        text = "command started" if started else f"command skipped {task.cmd} is already running"
        return web.Response(status=202, text=text)

    def _refuse(self, kind: str, err: PayloadError, canary: str) -> web.Response:
        extra = {"canary": canary} if canary else {}
        if err.status == 403 and str(err) != "Forbidden":
            self.metrics.commands.labels(kind, "refused").inc()
            self.log.warning("%s", err, extra=extra)
        elif err.status == 400:
            self.log.info("bad request: %s", err, extra=extra)
        return web.Response(status=err.status, text=str(err))

    async def _bash(self, payload: Payload, cmd: str, log_output: bool, return_output: bool) -> web.Response:
        if not self.config.enable_bash:
            raise PayloadError(403, "command refused: bash commands are disabled; the operator enables "
                                    "them by starting the load tester with --enable-bash")
        outcome = await self.runner.run(("bash", "-c", cmd), kind="bash", text=cmd, canary=payload.canary,
                                        log_output=log_output)
        if not outcome.ok:
            return web.Response(status=500, text=f"command {cmd} failed: {outcome.output}: {outcome.error}")
        return web.Response(status=200, text=outcome.output if return_output else "")

    def constant(self, gate: str, action: str, status: int, text: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            try:
                await self._payload(request, allow_empty=True)
            except PayloadError as err:
                return self._gate_answer(gate, action, err.status, str(err))
            return self._gate_answer(gate, action, status, text)

        return handler

    def check(self, gate: str, prefix: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            try:
                key = prefix + self._gate_key(await self._payload(request))
                approved = await self.gates.is_open(key)
            except PayloadError as err:
                return self._gate_answer(gate, "check", err.status, str(err))
            except (ApiError, aiohttp.ClientError, TimeoutError) as err:
                return self._store_error(gate, "check", err)
            if approved:
                return self._gate_answer(gate, "check", 200, "Approved")
            return self._gate_answer(gate, "check", 403, "Forbidden")

        return handler

    def toggle(self, gate: str, prefix: str, is_open: bool) -> Handler:
        action = "open" if is_open else "close"

        async def handler(request: web.Request) -> web.Response:
            try:
                key = prefix + self._gate_key(await self._payload(request))
                await self.gates.set(key, is_open)
            except PayloadError as err:
                return self._gate_answer(gate, action, err.status, str(err))
            except GateFull as err:
                self.log.warning("%s %s not opened: %s", gate, key, err)
                return self._gate_answer(gate, action, 507, f"{gate} {key} not opened: {err}")
            except (ApiError, aiohttp.ClientError, TimeoutError) as err:
                return self._store_error(gate, action, err)
            self.log.info("%s %s %s", gate, key, "opened" if is_open else "closed")
            return self._gate_answer(gate, action, 202, f"{gate} {key} {'opened' if is_open else 'closed'}")

        return handler

    @staticmethod
    def _gate_key(payload: Payload) -> str:
        if not payload.name or not payload.namespace:
            raise PayloadError(400, "name and namespace are required")
        key = payload.canary
        if not _GATE_KEY.match(key):
            raise PayloadError(400, f"invalid canary name or namespace: {key!r}")
        return key

    def _gate_answer(self, gate: str, action: str, status: int, text: str) -> web.Response:
        self.metrics.gates.labels(gate, action, str(status)).inc()
        return web.Response(status=status, text=text)

    def _store_error(self, gate: str, action: str, err: BaseException) -> web.Response:
        self.log.error("gate state unavailable: %s", err)
        return self._gate_answer(gate, action, 500, f"gate state unavailable: {err}")
