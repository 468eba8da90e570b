"""Alert bodies of every provider type (exact JSON of flagger-reference.md §7), the severity filter, the
fields of the alerts that open a run, and event webhook payloads: plain tables over pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from canaryd.model.parse import parse_canary
from canaryd.model.spec import CanarySpec, WebhookSpec
from canaryd.notify import payloads
from canaryd.notify.destinations import GlobalNotifier
from canaryd.notify.event_webhooks import event_body, event_hooks
from canaryd.notify.payloads import Alert
from canaryd.notify.rules import alert_fields, severity_matches, traffic_routing, with_details

FIELDS = (("Cluster", "prod"), ("Target", "Deployment/podinfo.test"))
INFO = Alert("podinfo.test", "New revision detected, progressing canary analysis.", "info", FIELDS)
ERROR = Alert("podinfo.test", "Failed checks threshold reached 5", "error")


def slack_body(alert: Alert, color: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "channel": "general", "username": "flagger", "icon_url": "", "icon_emoji": ":rocket:",
        "attachments": [{"color": color, "author_name": "podinfo.test", "text": alert.message,
                         "mrkdwn_in": ["text"], "fields": fields}],
    }


SLACK_FIELDS = [{"title": "Cluster", "value": "prod", "short": False},
                {"title": "Target", "value": "Deployment/podinfo.test", "short": False}]

BODIES = [
    ("slack", INFO, slack_body(INFO, "good", SLACK_FIELDS)),
    ("slack", ERROR, slack_body(ERROR, "danger", [])),
    ("discord", INFO, slack_body(INFO, "good", SLACK_FIELDS)),
    ("rocket", INFO, slack_body(INFO, "#0076D7", SLACK_FIELDS)),
    ("rocket", ERROR, slack_body(ERROR, "#FF0000", [])),
    ("msteams", INFO, {
        "@type": "MessageCard", "@context": "http://schema.org/extensions", "themeColor": "0076D7",
        "summary": "podinfo.test",
        "sections": [{"activityTitle": INFO.message, "activitySubtitle": "podinfo.test",
                      "facts": [{"name": "Cluster", "value": "prod"},
                                {"name": "Target", "value": "Deployment/podinfo.test"}]}]}),
    ("msteams", ERROR, {
        "@type": "MessageCard", "@context": "http://schema.org/extensions", "themeColor": "FF0000",
        "summary": "podinfo.test",
        "sections": [{"activityTitle": ERROR.message, "activitySubtitle": "podinfo.test", "facts": []}]}),
    ("gchat", INFO, {"cards": [{
        "header": {"title": "Flagger", "subtitle": "podinfo.test", "imageUrl": "https://flagger.app/favicon.png"},
        "sections": [
            {"widgets": [{"textParagraph": {"text": "<font color=#848484><strong>New revision detected, "
                                                    "progressing canary analysis.</strong></font>"}}]},
            {"widgets": [{"textParagraph": {"text": "Cluster<br><font color=#848484><strong>prod"
                                                    "</strong></font>"}}]},
            {"widgets": [{"textParagraph": {"text": "Target<br><font color=#848484><strong>"
                                                    "Deployment/podinfo.test</strong></font>"}}]},
        ]}]}),
]


@pytest.mark.parametrize(("provider", "alert", "expected"), BODIES)
def test_body(provider: str, alert: Alert, expected: dict[str, Any]) -> None:
    assert payloads.body(provider, alert, channel="general", username="flagger") == expected


def test_unknown_provider_type_is_refused_with_the_supported_list() -> None:
    with pytest.raises(ValueError, match="supported: slack, msteams, discord, rocket, gchat"):
        payloads.body("pagerduty", INFO, channel="c", username="u")


@pytest.mark.parametrize(("provider", "address", "url"), [
    ("discord", "https://discord.com/api/webhooks/1/abc", "https://discord.com/api/webhooks/1/abc/slack"),
    ("discord", "https://discord.com/api/webhooks/1/abc/", "https://discord.com/api/webhooks/1/abc/slack"),
    ("discord", "https://discord.com/api/webhooks/1/abc/slack", "https://discord.com/api/webhooks/1/abc/slack"),
    ("slack", "https://hooks.slack.com/services/T/B/x", "https://hooks.slack.com/services/T/B/x"),
    ("msteams", "https://outlook.office.com/webhook/x/", "https://outlook.office.com/webhook/x/"),
])
def test_endpoint(provider: str, address: str, url: str) -> None:
    assert payloads.endpoint(provider, address) == url


# subscribed severity, alert severity, delivered
SEVERITY = [
    ("info", "info", True), ("info", "warn", True), ("info", "error", True),
    ("warn", "info", False), ("warn", "warn", True), ("warn", "error", True),
    ("error", "info", False), ("error", "warn", False), ("error", "error", True),
    ("", "info", True), ("", "warn", True), ("", "error", True),  # empty = info (Flagger: nothing)
    ("info", "", False), ("info", "debug", False), ("bogus", "error", False),
]


@pytest.mark.parametrize(("subscribed", "severity", "delivered"), SEVERITY)
def test_severity_filter(subscribed: str, severity: str, delivered: bool) -> None:
    assert severity_matches(subscribed, severity) is delivered


def canary(**analysis: Any) -> CanarySpec:
    obj = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
           "metadata": {"name": "podinfo", "namespace": "test", "uid": "u", "generation": 1},
           "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                    "progressDeadlineSeconds": 120, "service": {"port": 9898},
                    "analysis": {"interval": "1m", "threshold": 5, **analysis}}}
    spec = parse_canary(obj)
    assert isinstance(spec, CanarySpec), spec
    return spec


ROUTING = [
    ({"stepWeight": 10, "maxWeight": 50}, "Weight step: 10 max: 50"),
    ({"stepWeight": 10}, "Weight step: 10 max: 100"),
    ({"stepWeights": [10, 20, 50]}, "Weight steps: 10,20,50 max: 50"),
    ({"iterations": 5}, "Blue/Green"),
    ({"iterations": 5, "match": [{"headers": {"x": {"exact": "1"}}}]}, "A/B Testing"),
]


@pytest.mark.parametrize(("analysis", "text"), ROUTING)
def test_traffic_routing(analysis: dict[str, Any], text: str) -> None:
    assert traffic_routing(canary(**analysis)) == text


DETAILS = (("Target", "Deployment/podinfo.test"), ("Failed checks threshold", "5"),
           ("Progress deadline", "120s"), ("Traffic routing", "Weight step: 10 max: 50"))


@pytest.mark.parametrize(("message", "cluster", "fields"), [
    ("New Deployment detected, initialization completed.", "", DETAILS),
    ("New revision detected, progressing canary analysis.", "prod", (("Cluster", "prod"), *DETAILS)),
    ("Canary analysis completed successfully, promotion finished.", "", ()),
    ("Failed checks threshold reached 5", "prod", (("Cluster", "prod"),)),
    ("Canary is waiting for approval.", "", ()),
])
def test_alert_fields(message: str, cluster: str, fields: tuple[tuple[str, str], ...]) -> None:
    assert with_details(message) is bool(set(fields) - {("Cluster", "prod")})
    assert alert_fields(canary(stepWeight=10, maxWeight=50), message, cluster) == fields


@pytest.mark.parametrize(("flags", "expected"), [
    (GlobalNotifier(), None),
    (GlobalNotifier(slack_url="http://s/x"), ("slack", "http://s/x", "general", "flagger")),
    (GlobalNotifier(slack_url="http://s/x", slack_channel="", slack_user=""),
     ("slack", "http://s/x", "general", "flagger")),
    (GlobalNotifier(slack_url="http://s/x", slack_channel="ops", slack_user="bot"),
     ("slack", "http://s/x", "ops", "bot")),
    (GlobalNotifier(slack_url="http://s/x", msteams_url="http://t/y"), ("msteams", "http://t/y", "general",
                                                                        "flagger")),
])
def test_global_notifier(flags: GlobalNotifier, expected: tuple[str, str, str, str] | None) -> None:
    dest = flags.destination()
    got = None if dest is None else (dest.provider, dest.address, dest.channel, dest.username)
    assert got == expected


def test_credentials_stay_out_of_repr() -> None:
    flags = GlobalNotifier(slack_url="http://s/SENTINEL", slack_token="SENTINEL2")
    dest = flags.destination()
    assert "SENTINEL" not in repr(flags) and "SENTINEL" not in repr(dest)


OWN = WebhookSpec(name="ev", url="http://own/", type="event", metadata={"team": "a", "eventType": "x"})
GATE = WebhookSpec(name="gate", url="http://gate/", type="confirm-rollout")


@pytest.mark.parametrize(("hooks", "global_url", "names"), [
    ((OWN, GATE), "http://global/", ["ev"]),
    ((GATE,), "http://global/", ["events"]),
    ((GATE,), "", []),
    ((), "", []),
])
def test_event_hooks(hooks: tuple[WebhookSpec, ...], global_url: str, names: list[str]) -> None:
    assert [h.name for h in event_hooks(hooks, global_url)] == names


def test_event_body_keeps_event_keys_over_hook_metadata() -> None:
    body = event_body(OWN, name="podinfo", namespace="test", phase="Progressing", checksum="abc",
                      message="Advance podinfo.test canary weight 10", warning=False,
                      timestamp_ms=1700000000123)
    assert body == {"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": "abc",
                    "metadata": {"eventMessage": "Advance podinfo.test canary weight 10",
                                 "eventType": "Normal", "timestamp": "1700000000123", "team": "a"}}
    warn = event_body(GATE, name="p", namespace="n", phase="", checksum="", message="m", warning=True,
                      timestamp_ms=1)
    assert warn["metadata"]["eventType"] == "Warning"
