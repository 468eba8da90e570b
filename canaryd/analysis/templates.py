"""Checks backed by a MetricTemplate (``templateRef``), with Flagger's texts (flagger-reference.md §5.3-5.4).

The template comes from the watch cache through a lookup function and its secret through an async
lookup, both handed in when the registry is built, so this module does no Kubernetes I/O of its own.
Prometheus is queried here (unknown types are read as prometheus, as Flagger does); the provider
types of :data:`canaryd.analysis.providers.PROVIDERS` (influxdb, graphite, …) are queried through
their own module; Flagger's other providers are refused up front
(:mod:`canaryd.model.template_refs`) and, should a template change to one mid-run, give an error
result with the same message. A template
without ``address`` queries canaryd's ``--metrics-server``, never the Canary's ``metricsServer``, and its
``secretRef`` credentials are sent to its own ``address`` only; values put into a template of another
namespace are restricted (:mod:`canaryd.model.references`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from canaryd.analysis import thresholds
from canaryd.analysis.base import Check, CheckContext, CheckFactory, error_result
from canaryd.analysis.builtin import template_vars
from canaryd.analysis.prometheus import NoValuesFound, PrometheusClient, PrometheusError
from canaryd.analysis.providers import PROVIDERS, Provider, ProviderError, ProviderNoValues, ProviderSettings
from canaryd.analysis.providers.tokens import TokenCache
from canaryd.analysis.query_template import RenderError, render
from canaryd.analysis.urls import display_url
from canaryd.engine.types import CheckResult
from canaryd.kube.client import KubeClient
from canaryd.model.durations import parse_go_duration
from canaryd.model.providers import (
    MetricProvider,
    MetricTemplate,
    parse_metric_template,
    unsupported_provider,
)
from canaryd.model.shapes import ShapeError
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
    kube: KubeClient | None = None  # canaryd's API-server client, for the keptn and externalmetrics types
    tokens: TokenCache | None = None  # the factory's: provider tokens kept between queries

    @property
    def name(self) -> str:
        return self.metric.name

    def _ref(self) -> tuple[str, str]:
        ref = self.metric.template_ref or {}
        return str(ref.get("name") or ""), str(ref.get("namespace") or self.spec.namespace)

    async def run(self) -> CheckResult:
        tname, tns = self._ref()
        prefix = f"Metric template {tname}.{tns}"
        raw = self.templates(tns, tname)
        if raw is None:
            return error_result(self.name, f'{prefix} error: metrictemplate.flagger.app "{tname}" not found')
        try:
            template = parse_metric_template(raw)
        except ShapeError as e:
            return error_result(self.name, f"{prefix} error: {e}")
        provider = template.provider
        unsupported = unsupported_provider(self.name, tns, tname, provider.type)
        if unsupported is not None:  # refused up front; reached when a template changes mid-run
            return error_result(self.name, unsupported)
        plugin = PROVIDERS.get(provider.type)
        if plugin is not None:
            return await self._run_provider(prefix, template, plugin)
        client = await self._client(prefix, provider)
        if isinstance(client, CheckResult):
            return client
        query = self._render(prefix, template)
        if isinstance(query, CheckResult):
            return query
        try:
            value = await client.query(query)
        except NoValuesFound as e:
            text = f"Halt advancement no values found for custom metric: {self.name}: {e}"
            return CheckResult(name=self.name, verdict="nodata", message=text)
        except PrometheusError as e:
            return error_result(self.name, f"Metric query failed for {self.name}: {e}")
        return thresholds.custom_result(self.name, value, self.metric)

    def _render(self, prefix: str, template: MetricTemplate) -> str | CheckResult:
        """The template's query with the Canary's variables (checked when the template is another
        namespace's), or the check's error."""
        _, tns = self._ref()
        try:
            return render(template.query, template_vars(self.spec, self.metric),
                          only_safe=tns != self.spec.namespace)
        except RenderError as e:
            return error_result(self.name, f"{prefix} query render error: {e}")

    async def _run_provider(self, prefix: str, template: MetricTemplate, plugin: Provider) -> CheckResult:
        """A template of a provider other than Prometheus (:mod:`canaryd.analysis.providers`): its
        secret's data is handed to the provider, which sends it only to the template's address."""
        _, tns = self._ref()
        secrets: Mapping[str, str] = {}
        if template.provider.secret_name:
            sname = template.provider.secret_name
            data = await self.secrets(tns, sname) if self.secrets is not None else None
            if data is None:
                return error_result(self.name, f'{prefix} secret {sname} error: secrets "{sname}" not found')
            secrets = data
        query = self._render(prefix, template)
        if isinstance(query, CheckResult):
            return query
        try:
            interval = parse_go_duration(self.metric.interval or "1m")
        except ValueError:
            interval = 60.0
        settings = ProviderSettings(interval_seconds=interval, timeout=self.ctx.timeout * 2,
                                    budget=self.ctx.timeout, max_answer_bytes=self.ctx.max_answer_bytes,
                                    kube=self.kube, namespaces=frozenset({self.spec.namespace, tns}),
                                    tokens=self.tokens if self.tokens is not None else TokenCache())
        try:
            value = await plugin.query(self.ctx.session, template, query, secrets, settings)
        except ProviderNoValues as e:
            text = f"Halt advancement no values found for custom metric: {self.name}: {e}"
            return CheckResult(name=self.name, verdict="nodata", message=text)
        except ProviderError as e:
            return error_result(self.name, f"Metric query failed for {self.name}: {e}")
        return thresholds.custom_result(self.name, value, self.metric)

    async def _client(self, prefix: str, provider: MetricProvider) -> PrometheusClient | CheckResult:
        """The template's own address (else canaryd's --metrics-server, never the Canary's
        ``metricsServer``); the template's credentials only ever go to the template's own address."""
        address = provider.address or self.ctx.operator_metrics_server
        if not address:
            return error_result(self.name, f"{prefix} error: spec.provider.address is not set and canaryd "
                                           "has no --metrics-server")
        token = username = password = None
        if provider.secret_name:
            sname = provider.secret_name
            if not provider.address:
                return error_result(self.name, f"{prefix} secret {sname} error: spec.provider.address is not "
                                               "set; the template's credentials are sent only to its own "
                                               "address")
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
                                headers=dict(provider.headers), bearer_token=token, username=username,
                                password=password, max_answer_bytes=self.ctx.max_answer_bytes,
                                insecure_skip_verify=provider.insecure_skip_verify)

    def timed_out(self, seconds: float) -> CheckResult:
        """Names the server that hung (the template's address, else the global one), as the builtins do."""
        tname, tns = self._ref()
        address, kind = self.ctx.operator_metrics_server, "Prometheus"
        try:
            provider = parse_metric_template(self.templates(tns, tname)).provider
            address = provider.address or address
            kind = provider.type if provider.type in PROVIDERS else kind
            address_of = getattr(PROVIDERS.get(provider.type), "address_of", None)  # the default host
            address = address_of(provider) if address_of is not None else address
        except ShapeError:
            pass
        where = f" {display_url(address)}" if address else ""  # keptn: the cluster's own objects
        return error_result(self.name, f"Metric query failed for {self.name}: {kind}{where} "
                                       f"timed out after {seconds:g}s")


def metric_template_factory(templates: TemplateLookup, secrets: SecretLookup | None = None,
                            kube: KubeClient | None = None) -> CheckFactory:
    """A factory for metrics with a ``templateRef``, reading templates (and secrets) through the lookups;
    ``kube`` is what the providers reading Kubernetes APIs (keptn, externalmetrics) go through."""

    tokens = TokenCache()  # one per factory, i.e. per process: Google tokens, AWS temporary credentials

    def factory(spec: CanarySpec, metric: MetricSpec, ctx: CheckContext) -> Check | None:
        if metric.template_ref is None:
            return None
        return MetricTemplateCheck(spec=spec, metric=metric, ctx=ctx, templates=templates, secrets=secrets,
                                   kube=kube, tokens=tokens)

    return factory
