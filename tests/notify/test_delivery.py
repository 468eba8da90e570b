"""Delivery against a real Slack-compatible receiver on loopback: headers and bodies, bad answers,
timeouts, unreachable hosts, AlertProviders with a secretRef (and broken ones), the severity filter,
ordering, bounded queues that never block the caller, event webhooks, and credentials kept out of
every log line."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from canaryd.model.spec import AlertSpec, AnalysisSpec, CanarySpec, ServiceSpec, TargetRef, WebhookSpec
from canaryd.notify.destinations import GlobalNotifier
from canaryd.notify.notifier import Notifier
from canaryd.notify.sender import post_json, safe_url, scrub
from e2e.receivers import Receiver

SENTINEL = "S3NT1NEL-credential"


async def until(predicate: Callable[[], Any], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class Lines(logging.Handler):
    """Keeps every formatted log line, extras included."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {record.__dict__}")

    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def lines() -> Lines:
    return Lines()


def logger(lines: Lines) -> logging.Logger:
    log = logging.getLogger(f"test.notify.{id(lines)}")
    log.handlers[:] = [lines]
    log.setLevel(logging.DEBUG)
    log.propagate = False
    return log


def spec(alerts: tuple[AlertSpec, ...] = (), webhooks: tuple[WebhookSpec, ...] = ()) -> CanarySpec:
    return CanarySpec(name="podinfo", namespace="test", uid="u", generation=1,
                      target=TargetRef("apps/v1", "Deployment", "podinfo"),
                      service=ServiceSpec("podinfo", 9898),
                      analysis=AnalysisSpec(step_weight=10, max_weight=50, threshold=3, alerts=alerts,
                                            webhooks=webhooks))


# ---- one POST ----


async def test_post_sends_json_with_bearer_token(receiver: Receiver, session: aiohttp.ClientSession) -> None:
    assert await post_json(session, f"{receiver.url}/hook", {"text": "hi"}, token="tok") is None
    got = receiver.received[0]
    assert got.body == {"text": "hi"} and got.headers["Authorization"] == "Bearer tok"
    assert got.headers["Content-Type"] == "application/json"
    assert await post_json(session, f"{receiver.url}/hook", {"text": "hi"}) is None
    assert "Authorization" not in receiver.received[1].headers


async def test_bad_response_names_code_and_body(receiver: Receiver, session: aiohttp.ClientSession) -> None:
    receiver.answer("/hook", 500, "invalid_payload")
    assert await post_json(session, f"{receiver.url}/hook", {}) == (
        "sending notification bad response 500: invalid_payload")
    receiver.answer(f"/hook/{SENTINEL}", 404, f"no_team for /hook/{SENTINEL}")
    error = await post_json(session, f"{receiver.url}/hook/{SENTINEL}", {})
    assert error is not None and error.startswith("sending notification bad response 404: no_team")
    assert SENTINEL not in error


async def test_timeout_is_bounded(receiver: Receiver, session: aiohttp.ClientSession) -> None:
    receiver.hang("/slow")
    started = time.monotonic()
    error = await post_json(session, f"{receiver.url}/slow", {}, timeout_seconds=0.3)
    assert error == "sending notification failed: timed out after 0.3s"
    assert time.monotonic() - started < 2.0


async def test_unreachable_and_invalid_urls_never_show_credentials(session: aiohttp.ClientSession) -> None:
    closed = await Receiver().start()
    port = closed.port
    await closed.stop()
    url = f"http://user:{SENTINEL}@127.0.0.1:{port}/services/T0/B0/{SENTINEL}?token={SENTINEL}"
    error = await post_json(session, url, {}, token=SENTINEL)
    assert error is not None and error.startswith("sending notification failed: ") and SENTINEL not in error
    error = await post_json(session, f"notaurl/{SENTINEL}", {})
    assert error is not None and SENTINEL not in error


@pytest.mark.parametrize(("url", "safe"), [
    ("https://hooks.slack.com/services/T0/B0/XYZ", "https://hooks.slack.com"),
    ("http://user:pw@slack.test:8080/x?y=z", "http://slack.test:8080"),
    ("slack.test/x", "<invalid URL>"),
    ("http://[::1", "<invalid URL>"),
])
def test_safe_url(url: str, safe: str) -> None:
    assert safe_url(url) == safe


def test_scrub_removes_url_parts_and_token() -> None:
    url = f"https://hooks.slack.com/services/T0/B0/{SENTINEL}"
    text = f"POST {url} failed; path /services/T0/B0/{SENTINEL}; last {SENTINEL}; bearer tok-123"
    out = scrub(text, url, "tok-123")
    assert SENTINEL not in out and "tok-123" not in out and "hooks.slack.com" in out


# ---- the notifier ----


def notifier(session: aiohttp.ClientSession, lines: Lines, *,
             providers: dict[tuple[str, str], Any] | None = None,
             secrets: dict[tuple[str, str], dict[str, str]] | None = None, **kw: Any) -> Notifier:
    async def secret(ns: str, name: str) -> dict[str, str] | None:
        return (secrets or {}).get((ns, name))

    return Notifier(session, logger(lines), providers=lambda ns, name: (providers or {}).get((ns, name)),
                    secrets=secret, registry=CollectorRegistry(), **kw)


RUN = [("info", "New revision detected, progressing canary analysis."),
       ("info", "Canary analysis completed successfully, promotion finished."),
       ("error", "Failed checks threshold reached 3")]


async def test_global_slack_gets_messages_in_order_with_fields(
        receiver: Receiver, session: aiohttp.ClientSession, lines: Lines) -> None:
    n = notifier(session, lines, global_notifier=GlobalNotifier(slack_url=f"{receiver.url}/slack/{SENTINEL}",
                                                                slack_token=SENTINEL), cluster_name="prod")
    n.start()
    try:
        for severity, message in RUN:
            n.alert(spec(), severity, message)
        await until(lambda: len(receiver.received) == 3)
    finally:
        await n.stop()
    texts = [b["attachments"][0]["text"] for b in receiver.bodies()]
    assert texts == [m for _, m in RUN]
    first = receiver.bodies()[0]["attachments"][0]
    assert [f["title"] for f in first["fields"]] == ["Cluster", "Target", "Failed checks threshold",
                                                     "Progress deadline", "Traffic routing"]
    assert [f["title"] for f in receiver.bodies()[1]["attachments"][0]["fields"]] == ["Cluster"]
    assert [b["attachments"][0]["color"] for b in receiver.bodies()] == ["good", "good", "danger"]
    assert receiver.received[0].headers["Authorization"] == f"Bearer {SENTINEL}"
    assert SENTINEL not in lines.text()


async def test_msteams_flag_wins(receiver: Receiver, session: aiohttp.ClientSession, lines: Lines) -> None:
    n = notifier(session, lines, global_notifier=GlobalNotifier(slack_url=f"{receiver.url}/slack",
                                                                msteams_url=f"{receiver.url}/teams"))
    n.start()
    n.alert(spec(), "warn", "Canary is waiting for approval.")
    await until(n.idle)
    await n.stop()
    assert receiver.paths() == ["/teams"] and receiver.bodies()[0]["@type"] == "MessageCard"


async def test_providers_with_secret_ref_and_severity_filter(
        receiver: Receiver, session: aiohttp.ClientSession, lines: Lines) -> None:
    providers = {
        ("test", "on-call"): {"spec": {"type": "slack", "secretRef": {"name": "slack-url"}}},
        ("test", "team"): {"spec": {"type": "msteams", "address": f"{receiver.url}/teams"}},
        ("ops", "chat"): {"spec": {"type": "gchat", "address": f"{receiver.url}/gchat", "channel": "x"}},
        ("test", "discord"): {"spec": {"type": "discord", "address": f"{receiver.url}/discord",
                                       "username": "bot", "channel": "dev"}},
    }
    secrets = {("test", "slack-url"): {"address": f"{receiver.url}/slack/{SENTINEL}", "token": SENTINEL}}
    alerts = (AlertSpec("errors", "on-call", severity="error"),
              AlertSpec("warnings", "team", severity="warn"),
              AlertSpec("all", "chat", "ops", severity="info"),
              AlertSpec("default", "discord"))  # empty severity: everything
    n = notifier(session, lines, providers=providers, secrets=secrets,
                 global_notifier=GlobalNotifier(slack_url=f"{receiver.url}/global"))
    n.start()
    for severity, message in [("info", "New revision detected, progressing canary analysis."),
                              ("warn", "Canary is waiting for approval."),
                              ("error", "Failed checks threshold reached 3")]:
        n.alert(spec(alerts), severity, message)
    await until(lambda: len(receiver.received) == 1 + 2 + 3 + 3)
    await until(n.idle)
    await n.stop()
    by_path: dict[str, int] = {}
    for p in receiver.paths():
        by_path[p] = by_path.get(p, 0) + 1
    assert by_path == {f"/slack/{SENTINEL}": 1, "/teams": 2, "/gchat": 3, "/discord/slack": 3}  # no global
    slack = receiver.bodies(f"/slack/{SENTINEL}")[0]
    assert (slack["channel"], slack["username"]) == ("general", "flagger")
    assert slack["attachments"][0]["text"] == "Failed checks threshold reached 3"
    assert receiver.received[receiver.paths().index(f"/slack/{SENTINEL}")].headers["Authorization"] == \
        f"Bearer {SENTINEL}"
    discord = receiver.bodies("/discord/slack")[0]
    assert (discord["channel"], discord["username"]) == ("dev", "bot")
    assert SENTINEL not in lines.text()


@pytest.mark.parametrize(("provider", "secrets", "needle"), [
    (None, {}, "AlertProvider missing.test not found"),
    ({"spec": {"type": "slack", "secretRef": {"name": "gone"}}}, {}, "Secret gone.test not found"),
    ({"spec": {"type": "slack", "secretRef": {"name": "s"}}}, {("test", "s"): {"token": SENTINEL}},
     "Secret s.test has no 'address' key"),
    ({"spec": {"type": "pagerduty", "address": "http://x/"}}, {},
     "alert a not sent: AlertProvider missing.test: type 'pagerduty' is not supported; "
     "supported: slack, msteams, discord, rocket, gchat"),
    ({"spec": {"type": "slack"}}, {}, "has neither address nor secretRef"),
    # malformed shapes name the field (no AttributeError), and count as failed like the others
    ({"spec": "slack"}, {}, "AlertProvider missing.test: spec: expected an object, got a string"),
    ({"spec": {"type": ["slack"]}}, {},
     "AlertProvider missing.test: spec.type: expected a string, got a list"),
    ({"spec": {"type": "slack", "secretRef": "s"}}, {},
     "AlertProvider missing.test: spec.secretRef: expected an object, got a string"),
    ({"spec": {"type": "slack", "address": {"url": "http://x/"}}}, {},
     "AlertProvider missing.test: spec.address: expected a string, got an object"),
    ({"spec": {"type": "slack", "address": "http://x/", "channel": 7}}, {},
     "AlertProvider missing.test: spec.channel: expected a string, got a number"),
    ("slack", {}, "AlertProvider missing.test: the AlertProvider: expected an object, got a string"),
])
async def test_broken_providers_are_logged_not_raised(
        session: aiohttp.ClientSession, lines: Lines, provider: Any,
        secrets: dict[tuple[str, str], dict[str, str]], needle: str) -> None:
    providers = {("test", "missing"): provider} if provider else {}
    n = notifier(session, lines, providers=providers, secrets=secrets)
    n.start()
    n.alert(spec((AlertSpec("a", "missing"),)), "error", "Failed checks threshold reached 3")
    await until(lambda: needle in lines.text())
    await n.stop()
    assert SENTINEL not in lines.text() and n.sent.labels(kind="alert", result="failed")._value.get() == 1


async def test_an_unexpected_error_still_counts_as_a_failed_alert(
        session: aiohttp.ClientSession, lines: Lines) -> None:
    async def broken_secret(ns: str, name: str) -> dict[str, str] | None:
        raise RuntimeError(f"API server said no for {SENTINEL}")

    providers = {("test", "p"): {"spec": {"type": "slack", "secretRef": {"name": "s"}}}}
    n = Notifier(session, logger(lines), providers=lambda ns, name: providers.get((ns, name)),
                 secrets=broken_secret, registry=CollectorRegistry())
    n.start()
    n.alert(spec((AlertSpec("a", "p"),)), "error", "Failed checks threshold reached 3")
    await until(lambda: n.sent.labels(kind="alert", result="failed")._value.get() == 1)
    await until(n.idle)
    await n.stop()
    assert "alert not sent: RuntimeError" in lines.text() and SENTINEL not in lines.text()


async def test_failures_are_logged_with_host_only(
        receiver: Receiver, session: aiohttp.ClientSession, lines: Lines) -> None:
    receiver.answer(f"/slack/{SENTINEL}", 500, "rollup_error")
    n = notifier(session, lines, global_notifier=GlobalNotifier(slack_url=f"{receiver.url}/slack/{SENTINEL}"))
    n.start()
    n.alert(spec(), "info", "Canary analysis completed successfully, promotion finished.")
    await until(lambda: any("bad response 500" in line for line in lines.lines))
    await n.stop()
    line = next(x for x in lines.lines if "bad response 500" in x)
    assert "sending notification bad response 500: rollup_error" in line and receiver.url in line
    assert SENTINEL not in lines.text()


async def test_a_hanging_receiver_blocks_neither_caller_nor_other_lanes(
        receiver: Receiver, session: aiohttp.ClientSession, lines: Lines) -> None:
    receiver.hang("/stuck")
    providers = {("test", "stuck"): {"spec": {"type": "slack", "address": f"{receiver.url}/stuck"}},
                 ("test", "ok"): {"spec": {"type": "slack", "address": f"{receiver.url}/ok"}}}
    n = notifier(session, lines, providers=providers, queue_size=2)
    n.start()
    s = spec((AlertSpec("s", "stuck"), AlertSpec("o", "ok")))
    started = time.monotonic()
    for i in range(10):  # the stuck lane: 1 in flight, 2 queued, the rest dropped
        n.alert(s, "error", f"Failed checks threshold reached {i}")
    assert time.monotonic() - started < 0.1  # the caller never waits for a receiver
    # nothing ran during the loop: each lane queued 2 and dropped 8
    assert n.sent.labels(kind="alert", result="dropped")._value.get() == 16
    await until(lambda: len(receiver.bodies("/ok")) == 2)
    await until(lambda: receiver.paths().count("/stuck") == 1)
    assert "notification queue full, dropping alert" in lines.text()
    await n.stop(drain_seconds=0.2)
    assert "stopping with notifications still queued" in lines.text()


async def test_event_webhooks(receiver: Receiver, session: aiohttp.ClientSession, lines: Lines) -> None:
    n = notifier(session, lines, event_webhook=f"{receiver.url}/events")
    n.start()
    canary = {"metadata": {"name": "podinfo", "namespace": "test"}, "status": {"phase": "Progressing"}}
    n.event(canary, spec(), "Advance podinfo.test canary weight 10", warning=False, checksum="c1")
    own = WebhookSpec(name="mine", url=f"{receiver.url}/mine", type="event", metadata={"team": "a"})
    n.event(canary, spec(webhooks=(own,)), "Halt podinfo.test advancement x", warning=True, checksum="c1")
    n.event(canary, None, "invalid spec", warning=True, checksum="")
    await until(lambda: len(receiver.received) == 3)
    receiver.answer("/mine", 500, "nope")
    n.event(canary, spec(webhooks=(own,)), "again", warning=False, checksum="c1")
    await until(lambda: "error sending event to webhook" in lines.text())
    await n.stop()
    assert sorted(receiver.paths()[:3]) == ["/events", "/events", "/mine"]  # lanes: ordered per destination
    first, invalid = receiver.bodies("/events")
    mine = receiver.bodies("/mine")[0]
    assert first["name"] == "podinfo" and first["phase"] == "Progressing" and first["checksum"] == "c1"
    assert first["metadata"]["eventMessage"] == "Advance podinfo.test canary weight 10"
    assert first["metadata"]["eventType"] == "Normal"
    assert abs(int(first["metadata"]["timestamp"]) - time.time() * 1000) < 60_000
    assert mine["metadata"] == {"eventMessage": "Halt podinfo.test advancement x", "eventType": "Warning",
                                "timestamp": mine["metadata"]["timestamp"], "team": "a"}
    assert invalid["metadata"]["eventMessage"] == "invalid spec"


async def test_lanes_are_capped(receiver: Receiver, session: aiohttp.ClientSession, lines: Lines) -> None:
    names = [f"p{i}" for i in range(5)]
    providers = {("test", n): {"spec": {"type": "slack", "address": f"{receiver.url}/{n}"}} for n in names}
    n = notifier(session, lines, providers=providers, max_lanes=2)
    n.start()
    for _ in range(3):
        n.alert(spec(tuple(AlertSpec(x, x) for x in names)), "info", "Canary is waiting for approval.")
    await until(lambda: len(receiver.received) == 15)
    workers = [t for t in asyncio.all_tasks() if t.get_name().startswith("notify-")]
    assert len(workers) == 2
    for name in names:  # shared lanes still keep each destination's order
        assert len(receiver.bodies(f"/{name}")) == 3
    await n.stop()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("notify-")]
