"""Checks backed by a MetricTemplate (``templateRef``), with Flagger's texts (flagger-behaviour.md §5.3-5.4).

The template comes from the watch cache through a lookup function and its secret through an async
lookup, both handed in when the registry is built, so this module does no Kubernetes I/O of its own.
Only the ``prometheus`` provider is supported; others give an error result that says so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from canaryd.analysis import thresholds
from canaryd.analysis.base import Check, CheckContext, CheckFactory, error_result
from canaryd.analysis.builtin import template_vars
from canaryd.analysis.prometheus import NoValuesFound, PrometheusClient, PrometheusError
from canaryd.analysis.query_template import RenderError, render
from canaryd.engine.types import CheckResult
from canaryd.model.spec import CanarySpec, MetricSpec

TemplateLookup = Callable[[str, str], Mapping[str, Any] | None]
"""(namespace, name) -> the MetricTemplate object, or None when it does not exist."""

SecretLookup = Callable[[str, str], Awaitable[Mapping[str, str] | None]]
"""(namespace, name) -> the Secret's decoded ``data``, or None when it does not exist."""


@dataclass(frozen=True)
class MetricTemplateCheck:
    spec: CanarySpec
    metric: MetricSpec
    ctx: CheckContext
    templates: TemplateLookup
    secrets: SecretLookup | None

    @property
    def name(self) -> str:
        return self.metric.name

    def _ref(self) -> tuple[str, str]:
        ref = self.metric.template_ref or {}
        return str(ref.get("name") or ""), str(ref.get("namespace") or self.spec.namespace)

    async def run(self) -> CheckResult:
        tname, tns = self._ref()
        prefix = f"Metric template {tname}.{tns}"
        template = self.templates(tns, tname)
        if template is None:
            return error_result(self.name, f'{prefix} error: metrictemplate.flagger.app "{tname}" not found')
        tspec = template.get("spec") or {}
        provider = tspec.get("provider") or {}
        ptype = str(provider.get("type") or "prometheus")
        if ptype != "prometheus":
            return error_result(self.name, f"{prefix} provider {ptype} error: canaryd supports only the "
                                           "prometheus provider")
        client = await self._client(prefix, provider)
        if isinstance(client, CheckResult):
            return client
        try:
            query = render(str(tspec.get("query") or ""), template_vars(self.spec, self.metric))
        except RenderError as e:
            return error_result(self.name, f"{prefix} query render error: {e}")
        try:
            value = await client.query(query)
        except NoValuesFound as e:
            text = f"Halt advancement no values found for custom metric: {self.name}: {e}"
            return CheckResult(name=self.name, verdict="nodata", message=text)
        except PrometheusError as e:
            return error_result(self.name, f"Metric query failed for {self.name}: {e}")
        out = thresholds.custom(value, self.metric)
        return CheckResult(name=self.name, verdict="pass" if out.passed else "fail", value=value,
                           threshold=out.threshold, message=out.message)

    async def _client(self, prefix: str, provider: Mapping[str, Any]) -> PrometheusClient | CheckResult:
        headers: dict[str, str] = {}
        for key, value in (provider.get("headers") or {}).items():
            headers[str(key)] = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        address = str(provider.get("address") or self.ctx.metrics_server)
        token = username = password = None
        secret_ref = provider.get("secretRef") or {}
        if secret_ref.get("name"):
            sname = str(secret_ref["name"])
            _, tns = self._ref()
            data = await self.secrets(tns, sname) if self.secrets is not None else None
            if data is None:
                return error_result(self.name, f'{prefix} secret {sname} error: secrets "{sname}" not found')
            token = data.get("token") or None
            username, password = data.get("username"), data.get("password")
            if token is None and (username is None or password is None):
                return error_result(self.name, f"{prefix} secret {sname} error: the secret must contain "
                                               "token, or username and password")
        # the client's own timeout is a safety net; run_checks bounds the check at ctx.timeout
        return PrometheusClient(address=address, session=self.ctx.session, timeout=self.ctx.timeout * 2,
                                headers=headers, bearer_token=token, username=username, password=password)

    def timed_out(self, seconds: float) -> CheckResult:
        """Names the server that hung (the template's address, else the global one), as the builtins do."""
        tname, tns = self._ref()
        provider = ((self.templates(tns, tname) or {}).get("spec") or {}).get("provider") or {}
        address = str(provider.get("address") or self.ctx.metrics_server)
        return error_result(self.name, f"Metric query failed for {self.name}: Prometheus {address} timed out "
                                       f"after {seconds:g}s")


def metric_template_factory(templates: TemplateLookup, secrets: SecretLookup | None = None) -> CheckFactory:
    """A factory for metrics with a ``templateRef``, reading templates (and secrets) through the lookups."""

    def factory(spec: CanarySpec, metric: MetricSpec, ctx: CheckContext) -> Check | None:
        if metric.template_ref is None:
            return None
        return MetricTemplateCheck(spec=spec, metric=metric, ctx=ctx, templates=templates, secrets=secrets)

    return factory
