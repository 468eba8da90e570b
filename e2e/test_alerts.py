"""Alerts end to end: canaryd (under its own ServiceAccount) notifies a Slack-compatible receiver on
loopback, reached through the mesh simulator's proxy as ``http://slack.<ns>/…``, of a promoted run and
of a failed run, in order; AlertProviders with a secretRef and severity filters; a receiver that fails
or never answers does not slow a run; and the Slack URL and token, and a Secret the target uses (through a
run its change triggered), never show up in canaryd's logs, Events, Canary status or /metrics.

Substitutions the bed forces: the receiver is a local aiohttp server standing in for hooks.slack.com
(registered behind an in-cluster name); podinfo pods are kwok pods served by the simulator, and a failing
revision is one whose pod template sets the simulator's BED_ERROR_PERCENT=100."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import pytest

from canaryd.kube.client import KubeClient
from canaryd.kube.resources import CANARY, EVENT, SECRET
from e2e.bed.waiting import wait_for
from e2e.canaries import canary, create, event_messages, podinfo, set_image, status, wait_phase
from e2e.mesh.control import MeshControl
from e2e.operator import Operator
from e2e.receivers import Receiver

SENTINEL_URL = "S3NT1NEL-url-part-7f3a"
SENTINEL_TOKEN = "S3NT1NEL-token-9c1e"

PROMOTED = ["New Deployment detected, initialization completed.",
            "New revision detected, progressing canary analysis.",
            "Canary analysis completed successfully, promotion finished."]


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client()
    yield client
    await client.close()


@pytest.fixture
async def receiver(bed: Any, namespace: str) -> AsyncIterator[Receiver]:
    """A Slack-compatible receiver behind ``http://slack.<namespace>/``."""
    r = await Receiver().start()
    await MeshControl(bed.mesh_url).register(namespace, "slack", f"127.0.0.1:{r.port}")
    yield r
    await r.stop()


def slack_texts(r: Receiver, path: str) -> list[str]:
    return [b["attachments"][0]["text"] for b in r.bodies(path)]


async def wait_texts(r: Receiver, path: str, count: int, what: str, seconds: float = 30.0) -> list[str]:
    def enough() -> list[str] | None:
        return slack_texts(r, path) if len(r.bodies(path)) >= count else None

    got: list[str] = await wait_for(enough, seconds, what)
    return got


async def test_global_slack_gets_a_promoted_and_a_failed_run_in_order_without_leaking_credentials(
        bed: Any, namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient,
        receiver: Receiver) -> None:
    hook = f"/services/T0/B0/{SENTINEL_URL}"
    op = operator_factory(namespace, env={
        "SLACK_URL": f"http://slack.{namespace}{hook}", "SLACK_TOKEN": SENTINEL_TOKEN,
        "SLACK_CHANNEL": "deploys", "CANARYD_CLUSTER_NAME": "bed",
        "EVENT_WEBHOOK_URL": f"http://slack.{namespace}/events"})
    await create(admin, namespace, podinfo(namespace), canary(namespace))
    await wait_phase(admin, namespace, "Initialized")
    await set_image(admin, namespace, "6.0.1")
    await wait_phase(admin, namespace, "Succeeded")
    texts = await wait_texts(receiver, hook, 3, "the promoted run's three alerts")
    assert texts == PROMOTED

    await set_image(admin, namespace, "6.0.2", env={"BED_ERROR_PERCENT": "100"})
    await wait_phase(admin, namespace, "Failed")
    texts = await wait_texts(receiver, hook, 5, "the failed run's alerts")
    assert texts == [*PROMOTED, "New revision detected, progressing canary analysis.",
                     "Failed checks threshold reached 10"]

    first = receiver.bodies(hook)[0]
    assert (first["channel"], first["username"]) == ("deploys", "flagger")
    fields = {f["title"]: f["value"] for f in first["attachments"][0]["fields"]}
    assert fields == {"Cluster": "bed", "Target": f"Deployment/podinfo.{namespace}",
                      "Failed checks threshold": "10", "Progress deadline": "60s",
                      "Traffic routing": "Weight step: 10 max: 50"}
    assert [b["attachments"][0]["color"] for b in receiver.bodies(hook)] == ["good"] * 4 + ["danger"]
    assert all(r.headers.get("Authorization") == f"Bearer {SENTINEL_TOKEN}"
               for r in receiver.received if r.path == hook)

    # every Event also went to the global event webhook, with Flagger's payload
    events = await event_messages(admin, namespace)
    def forwarded() -> set[str] | None:
        got = {b["metadata"]["eventMessage"] for b in receiver.bodies("/events")}
        return got if set(events) <= got else None

    await wait_for(forwarded, 30, "every Event forwarded to EVENT_WEBHOOK_URL")
    promo = next(b for b in receiver.bodies("/events")
                 if b["metadata"]["eventMessage"] == f"Promotion completed! Scaling down podinfo.{namespace}")
    assert promo["name"] == "podinfo" and promo["namespace"] == namespace and promo["checksum"]
    assert promo["metadata"]["eventType"] == "Normal" and promo["metadata"]["timestamp"].isdigit()

    # the credentials are nowhere canaryd writes
    canary_obj = json.dumps(await status(admin, namespace))
    everywhere = {"logs": "\n".join(json.dumps(x) for x in op.logs()), "events": "\n".join(events),
                  "status": canary_obj, "metrics": op.metrics_text()}
    for where, text in everywhere.items():
        assert SENTINEL_URL not in text and SENTINEL_TOKEN not in text, where
    # the counter moves once the receiver has answered, a moment after it recorded the body
    sent = 'canaryd_notifications_total{kind="alert",result="sent"} 5.0'
    await wait_for(lambda: sent in op.metrics_text(), 15, "the five alerts counted as sent")


def provider(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "flagger.app/v1beta1", "kind": "AlertProvider",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


async def test_alert_providers_with_secret_ref_severity_filters_and_broken_receivers(
        bed: Any, namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient,
        receiver: Receiver) -> None:
    hook = f"/hooks/{SENTINEL_URL}"
    receiver.hang("/never-answers")
    receiver.answer("/broken", 500, "invalid_token")
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "slack", "namespace": namespace},
              "data": {"address": base64.b64encode(f"http://slack.{namespace}{hook}".encode()).decode(),
                       "token": base64.b64encode(SENTINEL_TOKEN.encode()).decode()}}
    alerts = [
        {"name": "all", "severity": "info", "providerRef": {"name": "on-call"}},
        {"name": "errors", "severity": "error", "providerRef": {"name": "teams"}},
        {"name": "slow", "providerRef": {"name": "slow"}},  # empty severity: everything
        {"name": "broken", "severity": "warn", "providerRef": {"name": "broken"}},
        {"name": "absent", "severity": "error", "providerRef": {"name": "no-such-provider"}},
    ]
    op = operator_factory(namespace)
    await create(admin, namespace, secret,
                 provider(namespace, "on-call", type="slack", channel="on-call", secretRef={"name": "slack"}),
                 provider(namespace, "teams", type="msteams", address=f"http://slack.{namespace}/teams"),
                 provider(namespace, "slow", type="slack", address=f"http://slack.{namespace}/never-answers"),
                 provider(namespace, "broken", type="rocket", address=f"http://slack.{namespace}/broken"),
                 podinfo(namespace), canary(namespace, alerts=alerts))
    await wait_phase(admin, namespace, "Initialized")
    await set_image(admin, namespace, "6.0.1", env={"BED_ERROR_PERCENT": "100"})
    started = await wait_phase(admin, namespace, "Progressing")
    assert started
    await wait_phase(admin, namespace, "Failed")

    texts = await wait_texts(receiver, hook, 3, "the on-call provider's alerts")
    assert texts == ["New Deployment detected, initialization completed.",
                     "New revision detected, progressing canary analysis.",
                     "Failed checks threshold reached 10"]
    on_call = receiver.bodies(hook)[0]
    assert (on_call["channel"], on_call["username"]) == ("on-call", "flagger")
    assert {r.headers.get("Authorization") for r in receiver.received if r.path == hook} == {
        f"Bearer {SENTINEL_TOKEN}"}
    teams = await wait_for(lambda: receiver.bodies("/teams"), 10, "the error alert on MS Teams")
    assert [t["sections"][0]["activityTitle"] for t in teams] == ["Failed checks threshold reached 10"]
    assert teams[0]["themeColor"] == "FF0000"
    # warn+error only: the rocket provider got just the error, and answered 500 (each provider on a lane
    # of its own: its alert may land after the on-call provider's)
    broken = await wait_for(lambda: [b["attachments"][0]["text"] for b in receiver.bodies("/broken")], 10,
                            "the error alert on the rocket provider")
    assert broken == ["Failed checks threshold reached 10"]

    def logged(needle: str) -> bool:
        return any(needle in m for m in op.messages())

    await wait_for(lambda: logged("sending notification bad response 500: invalid_token"), 10,
                   "the 500 logged")
    await wait_for(lambda: logged("sending notification failed: timed out after 5s"), 15,
                   "the timeout logged")
    await wait_for(lambda: logged("AlertProvider no-such-provider." + namespace + " not found"), 10,
                   "the missing provider logged")
    line = next(x for x in op.logs() if "bad response 500" in str(x.get("msg")))
    assert line["url"] == f"http://slack.{namespace}" and line["canary"] == f"podinfo.{namespace}"

    # a receiver that never answers (5 s timeout) did not hold up the run: the alert for "New revision"
    # went out on a background lane while the task scaled up the canary and started the analysis
    def at(prefix: str) -> datetime:
        ts = next(x["ts"] for x in op.logs() if str(x.get("msg", "")).startswith(prefix))
        return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")

    gap = (at("Starting canary analysis") - at("New revision detected! Scaling up")).total_seconds()
    assert gap < 3.0, gap
    rolled_back = f"Rolling back podinfo.{namespace} failed checks threshold reached 10"

    async def rollback_recorded() -> list[str] | None:  # Events follow the Failed status they report
        got = await event_messages(admin, namespace)
        return got if f"Canary failed! Scaling down podinfo.{namespace}" in got else None

    events = await wait_for(rollback_recorded, 15, "the rollback's Events")
    assert events.count(rolled_back) == 1, events
    everything = "\n".join(json.dumps(x) for x in op.logs()) + "\n".join(events) + op.metrics_text()
    everything += json.dumps(await status(admin, namespace))
    assert SENTINEL_URL not in everything and SENTINEL_TOKEN not in everything


async def test_progress_deadline_rollback_is_alerted(
        namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient,
        receiver: Receiver) -> None:
    """Beyond Flagger (#1663): a run rolled back for its progress deadline sends an error alert."""
    operator_factory(namespace, env={"SLACK_URL": f"http://slack.{namespace}/deadline"})
    await create(admin, namespace, podinfo(namespace), canary(namespace, deadline=5))
    await wait_phase(admin, namespace, "Initialized")
    await set_image(admin, namespace, "6.0.1", never_ready=True)
    await wait_phase(admin, namespace, "Failed", seconds=30)
    texts = await wait_texts(receiver, "/deadline", 3, "the deadline alert")
    assert texts[:2] == ["New Deployment detected, initialization completed.",
                         "New revision detected, progressing canary analysis."]
    assert texts[2] == (f"Progress deadline exceeded canary deployment podinfo.{namespace} not ready: "
                        "waiting for rollout to finish: 0 of 1 (readyThreshold 100%) updated replicas are "
                        "available")
    assert receiver.bodies("/deadline")[2]["attachments"][0]["color"] == "danger"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def test_sentinels_in_a_secret_the_target_uses_and_in_an_alert_url_never_leak(
        bed: Any, namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient,
        receiver: Receiver) -> None:
    """A Secret the target consumes (env from a key, envFrom and a volume) holds a sentinel, the Slack URL
    of an AlertProvider another: after the Secret's change triggered a run that was promoted (canaryd read
    the Secret in full to copy it to ``-primary``) neither appears, raw or base64, in canaryd's logs (debug
    level), any Event of the namespace, the Canary's status or ``/metrics``."""
    ns = namespace
    first, second = f"S3NT1NEL-secret-a-{ns}", f"S3NT1NEL-secret-b-{ns}"
    url_part = f"S3NT1NEL-slack-{ns}"
    hook = f"/services/T0/B0/{url_part}"
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "podinfo-db", "namespace": ns},
              "data": {"password": b64(first)}}
    target = podinfo(ns)
    pod = target["spec"]["template"]["spec"]
    pod["containers"][0]["env"] = [{"name": "DB_PASSWORD",
                                    "valueFrom": {"secretKeyRef": {"name": "podinfo-db", "key": "password"}}}]
    pod["containers"][0]["envFrom"] = [{"secretRef": {"name": "podinfo-db"}}]
    pod["containers"][0]["volumeMounts"] = [{"name": "db", "mountPath": "/etc/db"}]
    pod["volumes"] = [{"name": "db", "secret": {"secretName": "podinfo-db"}}]
    alerts = [{"name": "chat", "severity": "info", "providerRef": {"name": "chat"}}]
    op = operator_factory(namespace)
    await create(admin, ns, secret,
                 provider(ns, "chat", type="slack", channel="deploys", address=f"http://slack.{ns}{hook}"),
                 target, canary(ns, alerts=alerts))
    await wait_phase(admin, ns, "Initialized")
    copy = await admin.get(SECRET, ns, "podinfo-db-primary")
    assert copy["data"] == {"password": b64(first)}  # canaryd did read the Secret's data

    await admin.patch(SECRET, ns, "podinfo-db", {"data": {"password": b64(second)}})
    await wait_phase(admin, ns, "Progressing")
    await wait_phase(admin, ns, "Succeeded")
    await wait_for(lambda: len(receiver.bodies(hook)) >= 3, 30, "the run's alerts through the provider")
    copy = await admin.get(SECRET, ns, "podinfo-db-primary")
    assert copy["data"] == {"password": b64(second)}

    events, _ = await admin.list(EVENT, ns)
    canary_obj = await admin.get(CANARY, ns, "podinfo")
    everywhere = {"logs": "\n".join(json.dumps(x) for x in op.logs()),
                  "events": json.dumps(events),
                  "status": json.dumps(canary_obj.get("status")),
                  "metrics": op.metrics_text()}
    assert "podinfo-db" in everywhere["status"]  # the Secret is tracked by name (and checksum) only
    for where, text in everywhere.items():
        for needle in (first, second, b64(first), b64(second), url_part):
            assert needle not in text, f"{needle} found in {where}"
