"""A raw MetricTemplate or AlertProvider (from the watch cache) -> a typed, checked value, or a
:class:`~canaryd.model.shapes.ShapeError` that names the field (``spec.provider: expected an object, got
a string``).

The checks (:mod:`canaryd.analysis.templates`) and the notifier (:mod:`canaryd.notify.destinations`) read
these objects only through here, so a malformed object is a clear message, never an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from canaryd.model.shapes import ShapeError, expect_bool, expect_obj, expect_printable, expect_str, kind_of

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 token)

# the provider registry: what a MetricTemplate's ``provider.type`` can name. Flagger's providers that
# canaryd does not implement yet are refused up front (Valid=False on every Canary that uses them);
# any other type is read as prometheus, as Flagger does.
METRIC_PROVIDERS = ("prometheus", "influxdb", "graphite", "datadog", "newrelic", "dynatrace", "cloudwatch",
                    "stackdriver", "splunk", "keptn", "externalmetrics")
UNIMPLEMENTED_METRIC_PROVIDERS: tuple[str, ...] = ()

# the secret keys a provider type cannot query without (Flagger's names); a template whose secret lacks
# one is refused up front, naming the key (canaryd.model.template_refs)
REQUIRED_SECRET_KEYS: dict[str, tuple[str, ...]] = {
    "datadog": ("datadog_api_key", "datadog_application_key"),
    "newrelic": ("newrelic_account_id", "newrelic_query_key"),
    "dynatrace": ("dynatrace_token",),
    "splunk": ("sf_token_key",),
    "stackdriver": ("project",),  # serviceAccountKey is optional: Google's default credentials
    "influxdb": ("token", "org"),
    "graphite": ("username", "password"),
}
# types whose secretRef is optional (no credentials sent without one); with one, the keys above are needed
SECRET_REF_OPTIONAL = ("influxdb", "graphite")


def missing_secret_key(metric: str, namespace: str, name: str, provider: MetricProvider,
                       secret_keys: frozenset[str] | None) -> str | None:
    """The message for a template whose provider needs a secret key it does not have, else None.
    ``secret_keys`` are the keys of the template's secret, None when the secret is not known (yet)."""
    needed = REQUIRED_SECRET_KEYS.get(provider.type, ())
    if not needed:
        return None
    where = f"metric {metric}: MetricTemplate {namespace}/{name} (provider {provider.type})"
    if not provider.secret_name:
        if provider.type in SECRET_REF_OPTIONAL:
            return None
        return f"{where} has no spec.provider.secretRef; its secret must contain {', '.join(needed)}"
    if secret_keys is None:
        return None
    missing = [k for k in needed if k not in secret_keys]
    if not missing:
        return None
    return f"{where}: secret {provider.secret_name} does not contain {', '.join(missing)}"


def unsupported_provider(metric: str, namespace: str, name: str, provider_type: str) -> str | None:
    """The message for a template of a known provider canaryd does not implement, else None."""
    if provider_type not in UNIMPLEMENTED_METRIC_PROVIDERS:
        return None
    return (f"metric {metric}: MetricTemplate {namespace}/{name} has provider {provider_type}, which canaryd "
            f"does not support yet; supported: {', '.join(METRIC_PROVIDERS)}")


@dataclass(frozen=True)
class MetricProvider:
    type: str = "prometheus"
    address: str = ""  # "" => canaryd's --metrics-server (never a Canary's metricsServer)
    headers: tuple[tuple[str, str], ...] = ()
    secret_name: str = ""
    insecure_skip_verify: bool = False
    region: str = ""  # cloudwatch only


@dataclass(frozen=True)
class MetricTemplate:
    provider: MetricProvider
    query: str


@dataclass(frozen=True)
class AlertProviderSpec:
    type: str
    address: str = field(default="", repr=False)
    secret_name: str = ""
    channel: str = ""
    username: str = ""
    proxy: str = field(default="", repr=False)


def _secret_name(v: Any, field_name: str) -> str:
    ref = expect_obj(v, field_name)
    return expect_str(ref.get("name"), f"{field_name}.name")


def _headers(v: Any) -> tuple[tuple[str, str], ...]:
    """``headers`` as Flagger takes them (name -> list of values, joined with ``, ``), or name -> string."""
    out = []
    for key, value in expect_obj(v, "spec.provider.headers").items():
        where = f"spec.provider.headers.{key}"
        name = str(key)
        if _TOKEN.fullmatch(name) is None:
            raise ShapeError(f"{where}: not a valid HTTP header name")
        if isinstance(value, list):
            parts = [expect_str(x, f"{where}[{i}]") for i, x in enumerate(value)]
            text = ", ".join(parts)
        elif isinstance(value, str):
            text = value
        else:
            raise ShapeError(f"{where}: expected a list of strings, got {kind_of(value)}")
        out.append((name, expect_printable(text, where)))
    return tuple(out)


def parse_metric_template(obj: Any) -> MetricTemplate:
    """Raises :class:`ShapeError`. A missing, empty or unknown provider type means ``prometheus``."""
    obj = expect_obj(obj, "the MetricTemplate") if obj is not None else None
    if obj is None:
        raise ShapeError("the MetricTemplate: expected an object, got null")
    spec = expect_obj(obj.get("spec"), "spec")
    raw = expect_obj(spec.get("provider"), "spec.provider")
    written = expect_str(raw.get("type"), "spec.provider.type")
    provider = MetricProvider(
        # unknown (and unset) types are read as prometheus, as Flagger does
        type=written if written in METRIC_PROVIDERS + UNIMPLEMENTED_METRIC_PROVIDERS else "prometheus",
        address=expect_printable(expect_str(raw.get("address"), "spec.provider.address").strip(),
                                 "spec.provider.address"),
        headers=_headers(raw.get("headers")),
        secret_name=_secret_name(raw.get("secretRef"), "spec.provider.secretRef"),
        insecure_skip_verify=expect_bool(raw.get("insecureSkipVerify"), "spec.provider.insecureSkipVerify"),
        region=expect_printable(expect_str(raw.get("region"), "spec.provider.region").strip(),
                                "spec.provider.region"),
    )
    query = expect_str(spec.get("query"), "spec.query")
    if not query.strip():
        raise ShapeError("spec.query: missing; write the PromQL query of the template")
    return MetricTemplate(provider=provider, query=query)


def parse_alert_provider(obj: Any) -> AlertProviderSpec:
    """Raises :class:`ShapeError`; whether ``type`` is supported is the notifier's question."""
    obj = expect_obj(obj, "the AlertProvider") if obj is not None else None
    if obj is None:
        raise ShapeError("the AlertProvider: expected an object, got null")
    spec = expect_obj(obj.get("spec"), "spec")
    return AlertProviderSpec(
        type=expect_str(spec.get("type"), "spec.type"),
        address=expect_printable(expect_str(spec.get("address"), "spec.address").strip(), "spec.address"),
        secret_name=_secret_name(spec.get("secretRef"), "spec.secretRef"),
        channel=expect_str(spec.get("channel"), "spec.channel"),
        username=expect_str(spec.get("username"), "spec.username"),
        proxy=expect_printable(expect_str(spec.get("proxy"), "spec.proxy").strip(), "spec.proxy"),
    )
