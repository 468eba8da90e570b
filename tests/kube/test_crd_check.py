"""The start check of the served Canary CRD: which of canaryd's status fields a schema would prune (pure
tables over the repository's CRD and Flagger v1.44's field list), and the one-line errors of
``check_canary_crd`` against a loopback API server."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from canaryd.kube.client import KubeClient
from canaryd.kube.config import ClusterConfig
from canaryd.kube.crd_check import (
    CANARYD_STATUS_FIELDS,
    StartError,
    check_canary_crd,
    missing_status_fields,
)

from .scripted import Scripted, ok

ROOT = Path(__file__).resolve().parents[2]
FLAGGER_FIELDS = yaml.safe_load((ROOT / "tests" / "fixtures" / "flagger_v1_44_args.yaml").read_text())[
    "canary_crd_v1beta1_status_fields"]


def own_crd() -> dict[str, Any]:
    docs = yaml.safe_load_all((ROOT / "manifests" / "crd" / "canaries.yaml").read_text())
    crd: dict[str, Any] = next(d for d in docs if d and d.get("kind") == "CustomResourceDefinition")
    return crd


def with_status(crd: dict[str, Any], status: dict[str, Any] | None) -> dict[str, Any]:
    out = copy.deepcopy(crd)
    for version in out["spec"]["versions"]:
        props = version["schema"]["openAPIV3Schema"]["properties"]
        if status is None:
            props.pop("status", None)
        else:
            props["status"] = status
    return out


def test_the_checked_fields_are_exactly_what_flaggers_crd_lacks() -> None:
    ours = own_crd()
    v1beta1 = next(v for v in ours["spec"]["versions"] if v["name"] == "v1beta1")
    status = set(v1beta1["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"])
    assert set(CANARYD_STATUS_FIELDS) == status - set(FLAGGER_FIELDS)


@pytest.mark.parametrize(
    ("status", "missing"),
    [
        ("own", []),
        ({"type": "object", "properties": {f: {"type": "string"} for f in FLAGGER_FIELDS}},
         list(CANARYD_STATUS_FIELDS)),
        ({"type": "object", "x-kubernetes-preserve-unknown-fields": True}, []),
        ({"type": "object", "properties": {"checks": {}, "nextStepAt": {}}},
         [f for f in CANARYD_STATUS_FIELDS if f not in ("checks", "nextStepAt")]),
        (None, list(CANARYD_STATUS_FIELDS)),
    ],
)
def test_missing_status_fields(status: Any, missing: list[str]) -> None:
    crd = own_crd() if status == "own" else with_status(own_crd(), status)
    assert missing_status_fields(crd) == missing


def test_unserved_version_counts_as_missing() -> None:
    crd = own_crd()
    for version in crd["spec"]["versions"]:
        version["served"] = version["name"] != "v1beta1"
    assert missing_status_fields(crd) == list(CANARYD_STATUS_FIELDS)
    assert missing_status_fields({}) == list(CANARYD_STATUS_FIELDS)


PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/canaries.flagger.app"


@pytest.mark.parametrize(
    ("code", "body", "message"),
    [
        (200, "own", None),
        (200, "flagger", r"^the served canaries.flagger.app CRD is not canaryd's \(Flagger's\?\): its "
                         r"v1beta1 status lacks checks, .*; update the CRDs: kubectl apply --server-side "
                         r"--force-conflicts -f manifests/crd/$"),
        (404, {"code": 404, "reason": "NotFound"}, r"CRD is not installed: kubectl apply"),
        (401, {"code": 401, "reason": "Unauthorized"}, r"^cannot read the canaries.flagger.app CRD: 401"),
    ],
)
async def test_check_against_a_loopback_api_server(server: Scripted, code: int, body: Any,
                                                   message: str | None) -> None:
    if body == "own":
        body = own_crd()
    elif body == "flagger":
        body = with_status(own_crd(), {"type": "object", "properties": {f: {} for f in FLAGGER_FIELDS}})
    server.reply(ok(body, code))
    client = KubeClient(ClusterConfig(base_url=server.url, ssl_context=None), max_attempts=1)
    try:
        if message is None:
            await check_canary_crd(client)
        else:
            with pytest.raises(StartError, match=message) as err:
                await check_canary_crd(client)
            assert "\n" not in str(err.value)
    finally:
        await client.close()
    assert [(x.method, x.path) for x in server.seen] == [("GET", PATH)]


def openapi(crd: dict[str, Any]) -> dict[str, Any]:
    """The API server's /openapi/v3 document of the group, as it publishes a CRD's v1beta1 schema."""
    v1beta1 = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    return {"openapi": "3.0.0", "components": {"schemas": {
        "app.flagger.v1beta1.Canary": v1beta1["schema"]["openAPIV3Schema"]}}}


FORBIDDEN = {"code": 403, "reason": "Forbidden"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("own", None),
        ("flagger", r"its v1beta1 status lacks checks, .*update the CRDs: kubectl apply"),
        ({"components": {"schemas": {}}}, r"CRD is not installed \(/openapi/v3/apis/flagger.app/v1beta1 "
                                          r"has no app.flagger.v1beta1.Canary\)"),
        (FORBIDDEN, r"RBAC: get on customresourcedefinitions canaries.flagger.app.* nor /openapi/v3/"),
    ],
)
async def test_without_crd_rights_the_openapi_document_tells(server: Scripted, document: Any,
                                                             message: str | None) -> None:
    """Flagger's own ClusterRole cannot get CRDs: the published OpenAPI schema (open to every
    authenticated identity) answers the same question."""
    if document == "own":
        document = openapi(own_crd())
    elif document == "flagger":
        document = openapi(with_status(own_crd(), {"type": "object",
                                                   "properties": {f: {} for f in FLAGGER_FIELDS}}))
    server.reply(ok(FORBIDDEN, 403), ok(document, 403 if document is FORBIDDEN else 200))
    client = KubeClient(ClusterConfig(base_url=server.url, ssl_context=None), max_attempts=1)
    try:
        if message is None:
            await check_canary_crd(client)
        else:
            with pytest.raises(StartError, match=message):
                await check_canary_crd(client)
    finally:
        await client.close()
    assert [x.path for x in server.seen] == [PATH, "/openapi/v3/apis/flagger.app/v1beta1"]
