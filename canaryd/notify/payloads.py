"""The JSON bodies each chat service expects, byte-compatible with Flagger's (flagger-reference.md §7).

Pure functions: an :class:`Alert` in, a dict out. ``fields`` are (title, value) pairs in display order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROVIDER_TYPES = ("slack", "msteams", "discord", "rocket", "gchat")
SEVERITIES = ("info", "warn", "error")

_GCHAT_GREY = "#848484"


@dataclass(frozen=True)
class Alert:
    """One notification about one canary (``canary`` is ``name.namespace``)."""

    canary: str
    message: str
    severity: str  # info | warn | error
    fields: tuple[tuple[str, str], ...] = ()


def slack(
    alert: Alert, *, channel: str, username: str, colors: tuple[str, str] = ("good", "danger")
) -> dict[str, Any]:
    """Slack's legacy attachment message (also what Discord's /slack endpoint and Rocket.Chat read)."""
    good, bad = colors
    return {
        "channel": channel,
        "username": username,
        "icon_url": "",
        "icon_emoji": ":rocket:",
        "attachments": [
            {
                "color": bad if alert.severity == "error" else good,
                "author_name": alert.canary,
                "text": alert.message,
                "mrkdwn_in": ["text"],
                "fields": [{"title": n, "value": v, "short": False} for n, v in alert.fields],
            }
        ],
    }


def rocket(alert: Alert, *, channel: str, username: str) -> dict[str, Any]:
    return slack(alert, channel=channel, username=username, colors=("#0076D7", "#FF0000"))


def msteams(alert: Alert) -> dict[str, Any]:
    """An Office 365 connector MessageCard."""
    return {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": "FF0000" if alert.severity == "error" else "0076D7",
        "summary": alert.canary,
        "sections": [
            {
                "activityTitle": alert.message,
                "activitySubtitle": alert.canary,
                "facts": [{"name": n, "value": v} for n, v in alert.fields],
            }
        ],
    }


def _grey_bold(text: str) -> str:
    return f"<font color={_GCHAT_GREY}><strong>{text}</strong></font>"


def gchat(alert: Alert) -> dict[str, Any]:
    """A Google Chat card: the message first, then one section per field."""
    sections: list[dict[str, Any]] = [{"widgets": [{"textParagraph": {"text": _grey_bold(alert.message)}}]}]
    sections += [
        {"widgets": [{"textParagraph": {"text": f"{n}<br>{_grey_bold(v)}"}}]} for n, v in alert.fields
    ]
    return {
        "cards": [
            {
                "header": {
                    "title": "Flagger",
                    "subtitle": alert.canary,
                    "imageUrl": "https://flagger.app/favicon.png",
                },
                "sections": sections,
            }
        ]
    }


def body(provider: str, alert: Alert, *, channel: str, username: str) -> dict[str, Any]:
    """The payload for a provider type (one of :data:`PROVIDER_TYPES`)."""
    if provider in ("slack", "discord"):
        return slack(alert, channel=channel, username=username)
    if provider == "rocket":
        return rocket(alert, channel=channel, username=username)
    if provider == "msteams":
        return msteams(alert)
    if provider == "gchat":
        return gchat(alert)
    raise ValueError(
        f"alert provider type {provider} is not supported; supported: {', '.join(PROVIDER_TYPES)}"
    )


def endpoint(provider: str, address: str) -> str:
    """Discord takes Slack payloads on ``<webhook>/slack``; the others post to the address as given."""
    if provider == "discord" and not address.rstrip("/").endswith("/slack"):
        return address.rstrip("/") + "/slack"
    return address
