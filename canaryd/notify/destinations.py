"""Where an alert goes: AlertProviders named by a Canary's ``analysis.alerts`` (read from the informer
cache, their Secret read on demand and never kept), or the process-wide Slack / MS Teams flags.

A :class:`Destination` holds the URL and token only for as long as one send takes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from canaryd.model.providers import parse_alert_provider
from canaryd.model.shapes import ShapeError
from canaryd.model.spec import AlertSpec, CanarySpec
from canaryd.notify.payloads import PROVIDER_TYPES
from canaryd.notify.rules import severity_matches

ProviderLookup = Callable[[str, str], "dict[str, Any] | None"]  # (namespace, name) -> AlertProvider
SecretLookup = Callable[[str, str], Awaitable["dict[str, str] | None"]]  # (namespace, name) -> data

DEFAULT_CHANNEL = "general"
DEFAULT_USERNAME = "flagger"


@dataclass(frozen=True)
class Destination:
    """One receiver of one alert; ``label`` names it in logs without its address."""

    label: str
    provider: str  # one of PROVIDER_TYPES
    address: str = field(repr=False)
    token: str = field(default="", repr=False)
    channel: str = DEFAULT_CHANNEL
    username: str = DEFAULT_USERNAME
    proxy: str = field(default="", repr=False)


@dataclass(frozen=True)
class GlobalNotifier:
    """The ``--slack-*`` / ``--msteams-*`` flags; MS Teams wins when both URLs are set."""

    slack_url: str = field(default="", repr=False)
    slack_token: str = field(default="", repr=False)
    slack_proxy: str = field(default="", repr=False)
    slack_user: str = DEFAULT_USERNAME
    slack_channel: str = DEFAULT_CHANNEL
    msteams_url: str = field(default="", repr=False)
    msteams_proxy: str = field(default="", repr=False)

    def destination(self) -> Destination | None:
        if self.msteams_url:
            return Destination("global msteams", "msteams", self.msteams_url, proxy=self.msteams_proxy)
        if self.slack_url:
            return Destination(
                "global slack",
                "slack",
                self.slack_url,
                token=self.slack_token,
                channel=self.slack_channel or DEFAULT_CHANNEL,
                username=self.slack_user or DEFAULT_USERNAME,
                proxy=self.slack_proxy,
            )
        return None


class ResolveError(Exception):
    """An alert cannot be sent to a provider (missing provider or Secret, bad type); logged."""


def subscribed(spec: CanarySpec, severity: str) -> list[AlertSpec]:
    """The Canary's alerts that want this severity."""
    return [a for a in spec.analysis.alerts if severity_matches(a.severity, severity)]


async def resolve(
    alert: AlertSpec, namespace: str, providers: ProviderLookup, secrets: SecretLookup
) -> Destination:
    """Read the AlertProvider (cache) and its Secret (API, on demand) into a Destination."""
    ns = alert.provider_namespace or namespace
    label = f"AlertProvider {alert.provider_name}.{ns}"
    obj = providers(ns, alert.provider_name)
    if obj is None:
        raise ResolveError(f"{label} not found")
    try:
        spec = parse_alert_provider(obj)
    except ShapeError as err:
        raise ResolveError(f"{label}: {err}") from None
    provider = spec.type
    if provider not in PROVIDER_TYPES:
        raise ResolveError(
            f"{label}: type {provider!r} is not supported; supported: {', '.join(PROVIDER_TYPES)}"
        )
    address, token = spec.address, ""
    if spec.secret_name:
        data = await secrets(ns, spec.secret_name)
        if data is None:
            raise ResolveError(f"{label}: Secret {spec.secret_name}.{ns} not found")
        if not data.get("address"):
            raise ResolveError(f"{label}: Secret {spec.secret_name}.{ns} has no 'address' key")
        address, token = data["address"].strip(), (data.get("token") or "").strip()
    if not address:
        raise ResolveError(f"{label} has neither address nor secretRef")
    return Destination(
        label,
        provider,
        address,
        token=token,
        channel=spec.channel or DEFAULT_CHANNEL,
        username=spec.username or DEFAULT_USERNAME,
        proxy=spec.proxy,
    )
