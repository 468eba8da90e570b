"""The podinfo Deployment and a fast v1beta1 Canary for scenario tests (alerts, gates), plus the few
async helpers those tests share: apply, bump the image, read the Canary, wait for a phase."""

from __future__ import annotations

import copy
from typing import Any

from canaryd.kube import resources as r
from canaryd.kube.client import KubeClient
from canaryd.kube.errors import NotFound
from canaryd.kube.resources import CANARY, DEPLOYMENT, EVENT
from e2e.bed import NEVER_READY
from e2e.bed.waiting import wait_for

IMAGE = "ghcr.io/stefanprodan/podinfo"


def podinfo(namespace: str, tag: str = "6.0.0", env: dict[str, str] | None = None, *,
            never_ready: bool = False) -> dict[str, Any]:
    """podinfo as the tutorial deploys it; ``env`` sets the simulator's behaviour (BED_ERROR_PERCENT…);
    ``never_ready`` pods stay unready (the bed's kwok stage; a failing probe on a real cluster)."""
    container: dict[str, Any] = {"name": "podinfod", "image": f"{IMAGE}:{tag}",
                                 "ports": [{"name": "http", "containerPort": 9898, "protocol": "TCP"}]}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    labels = {"app": "podinfo", **({NEVER_READY: "true"} if never_ready else {})}
    if never_ready:
        container["readinessProbe"] = {"tcpSocket": {"port": 1}, "periodSeconds": 5}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "podinfo", "namespace": namespace, "labels": {"app": "podinfo"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "podinfo"}},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [container]}}},
    }


def canary(namespace: str, *, webhooks: list[dict[str, Any]] | None = None,
           alerts: list[dict[str, Any]] | None = None, deadline: int = 60, **analysis: Any) -> dict[str, Any]:
    """A v1beta1 Canary with 1 s steps and the two builtin checks over 10 s windows. Threshold 10: a new
    canary's first mesh metrics reach Prometheus a few 1 s checks after its scale-up ("no values found"
    counts as a failed check), on a busy bed five of them (CI: a run meant to progress rolled back at 5)."""
    spec_analysis: dict[str, Any] = {
        "interval": "1s", "threshold": 10, "stepWeight": 10, "maxWeight": 50,
        "metrics": [
            {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "10s"},
            {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "10s"},
        ],
    }
    spec_analysis.update(analysis)
    if webhooks:
        spec_analysis["webhooks"] = webhooks
    if alerts:
        spec_analysis["alerts"] = alerts
    return {
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": namespace},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                 "progressDeadlineSeconds": deadline, "service": {"port": 9898}, "analysis": spec_analysis},
    }


async def create(client: KubeClient, namespace: str, *objects: dict[str, Any]) -> None:
    kinds = {res.kind: res for res in (r.CANARY, r.DEPLOYMENT, r.SECRET, r.ALERT_PROVIDER, r.SERVICE)}
    for obj in objects:
        await client.create(kinds[obj["kind"]], namespace, copy.deepcopy(obj))


async def set_image(client: KubeClient, namespace: str, tag: str, env: dict[str, str] | None = None, *,
                    never_ready: bool = False) -> None:
    """A new revision of the target: image tag (and the simulator's behaviour env)."""
    body = podinfo(namespace, tag, env, never_ready=never_ready)
    patch = {"spec": {"template": body["spec"]["template"]}}
    await client.patch(DEPLOYMENT, namespace, "podinfo", patch, patch_type="strategic")


async def status(client: KubeClient, namespace: str, name: str = "podinfo") -> dict[str, Any]:
    try:
        obj = await client.get(CANARY, namespace, name)
    except NotFound:
        return {}
    return dict(obj.get("status") or {})


async def wait_phase(client: KubeClient, namespace: str, *phases: str,
                     seconds: float = 90.0) -> dict[str, Any]:
    """Wait until the Canary's phase is one of ``phases``; returns its status."""
    async def reached() -> dict[str, Any] | None:
        st = await status(client, namespace)
        return st if st.get("phase") in phases else None

    got: dict[str, Any] = await wait_for(reached, seconds, f"canary {namespace}/podinfo phase in {phases}",
                                         interval=0.2)
    return got


def _version(obj: dict[str, Any]) -> int:
    """A resourceVersion as a number: as strings, "100002" sorts before "99998"."""
    rv = str(obj["metadata"].get("resourceVersion") or "0")
    return int(rv) if rv.isdigit() else 0


async def event_messages(client: KubeClient, namespace: str) -> list[str]:
    """Messages of the Events on Canaries in ``namespace``, oldest first."""
    items, _ = await client.list(EVENT, namespace)
    items = [e for e in items if (e.get("involvedObject") or {}).get("kind") == "Canary"]
    items.sort(key=lambda e: (e.get("firstTimestamp") or "", _version(e)))
    return [str(e.get("message", "")) for e in items]
