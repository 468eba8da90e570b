"""Config checksums against vectors printed by Go 1.26 ``encoding/json`` + ``crypto/sha256`` (the
program that made them: json.Marshal(map) → sha256 → first 8 bytes hex, as Flagger does), and what the
cache keeps of each kind."""

from __future__ import annotations

import pytest

from canaryd.cache.slim import LAST_APPLIED, data_loaded, keep_loaded, slim, slim_metadata
from canaryd.model.checksum import config_checksum, go_json

GO_VECTORS = [
    (None, "74234e98afe7498f", "null"),
    (None, "74234e98afe7498f", "null"),  # the API omits empty data; Go reads it as a nil map
    ({}, "44136fa355b3678a", "{}"),
    ({"b": "2", "a": "1"}, "21f76dfbfe6dfe21", '{"a":"1","b":"2"}'),
    (
        {"html": '<a href="x">&</a>', "nl": "line1\nline2\ttab\r"},
        "898a531410d2e868",
        '{"html":"\\u003ca href=\\"x\\"\\u003e\\u0026\\u003c/a\\u003e","nl":"line1\\nline2\\ttab\\r"}',
    ),
    (
        {"u": "café \u2028 \u2029 ÿ 😀", "ctl": "\x00\x01\x08\x0c\x1f\x7f", "bs": "back\\slash"},
        "70b01c304cf36f91",
        '{"bs":"back\\\\slash","ctl":"\\u0000\\u0001\\b\\f\\u001f\x7f","u":"café \\u2028 \\u2029 ÿ 😀"}',
    ),
    ({"Z": "", "a.b": "x", "A": "y", "é": "z"}, "3c7224a0ab10b5dc", '{"A":"y","Z":"","a.b":"x","é":"z"}'),
    # a Secret: Go marshals []byte values as base64, which is exactly what the API returns in .data
    ({"password": "czNjcjN0", "tls.crt": "AAEC/w=="}, "9a03ef1602b0d427", None),
]


@pytest.mark.parametrize(("data", "checksum", "marshalled"), GO_VECTORS)
def test_config_checksum_matches_go(
    data: dict[str, str] | None, checksum: str, marshalled: str | None
) -> None:
    assert config_checksum(data) == checksum
    if marshalled is not None and data:
        assert go_json(data) == marshalled


SENTINEL = "c2VudGluZWwtc2VjcmV0LXZhbHVl"  # base64("sentinel-secret-value")


def _obj(kind: str, **extra: object) -> dict[str, object]:
    return {
        "metadata": {
            "name": "x", "namespace": "ns", "uid": "u1", "resourceVersion": "7",
            "labels": {"app": "a"},
            "annotations": {"keep": "me", LAST_APPLIED: '{"data":{"k":"' + SENTINEL + '"}}'},
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:data": {}}}],
        },
        **extra,
    }


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret"])
def test_configs_keep_checksum_never_data(kind: str) -> None:
    raw = _obj(kind, data={"k": SENTINEL}, binaryData={"b": SENTINEL}, type="Opaque", immutable=True)
    out = slim(kind, raw)
    assert SENTINEL not in repr(out)
    assert out["checksum"] == config_checksum({"k": SENTINEL})
    assert set(out) == {"apiVersion", "kind", "metadata", "checksum", "type", "immutable", "dataKeys"}
    assert out["dataKeys"] == ["b", "k"]  # the key names only
    assert out["kind"] == kind
    assert out["metadata"]["annotations"] == {"keep": "me"}
    assert "managedFields" not in out["metadata"]
    assert out["metadata"]["labels"] == {"app": "a"}
    assert raw["data"] == {"k": SENTINEL}  # the input is not changed


@pytest.mark.parametrize(
    "kind", ["Deployment", "Canary", "Service", "VirtualService", "HorizontalPodAutoscaler"]
)
def test_other_kinds_keep_everything_but_managed_fields(kind: str) -> None:
    raw = _obj(kind, spec={"replicas": 2}, status={"readyReplicas": 1})
    out = slim(kind, raw)
    assert out["spec"] == {"replicas": 2} and out["status"] == {"readyReplicas": 1}
    assert "managedFields" not in out["metadata"]
    assert out["metadata"]["annotations"][LAST_APPLIED]  # kept outside configs
    assert "managedFields" in raw["metadata"]  # the input is not changed


def _secret(rv: str, uid: str = "u1", **extra: object) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "ns", "uid": uid, "resourceVersion": rv}, **extra}


LOADED = _secret("7", checksum="abc", dataKeys=["k"], type="Opaque")

# (what the cache holds, what the metadata-only watch reports) -> which of the two is kept
KEEP_LOADED = [
    (None, _secret("7"), "fresh"),  # first sight
    (_secret("6"), _secret("7"), "fresh"),  # metadata replaced by newer metadata
    (LOADED, _secret("7"), "current"),  # a relist or a repeated event of the version read: keep the data
    (LOADED, _secret("8"), "fresh"),  # a change: the data may have changed, read again
    (LOADED, _secret("7", uid="u2"), "fresh"),  # re-created under the same name at the same version
    (LOADED, _secret("8", checksum="def"), "fresh"),  # a full object (write-through) is never replaced
]


@pytest.mark.parametrize(("current", "fresh", "kept"), KEEP_LOADED)
def test_keep_loaded(current: dict[str, object] | None, fresh: dict[str, object], kept: str) -> None:
    assert keep_loaded(current, fresh) is (current if kept == "current" else fresh)


def test_slim_metadata_keeps_the_metadata_and_marks_the_data_unread() -> None:
    partial = {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
               "metadata": {"name": "s", "namespace": "ns", "uid": "u", "resourceVersion": "3",
                            "labels": {"a": "b"}, "managedFields": [{"manager": "kubectl"}],
                            "annotations": {LAST_APPLIED: '{"data":{"password":"c2VjcmV0"}}', "x": "y"}}}
    cached = slim_metadata("Secret", "v1", partial)
    assert cached == {"apiVersion": "v1", "kind": "Secret",
                      "metadata": {"name": "s", "namespace": "ns", "uid": "u", "resourceVersion": "3",
                                   "labels": {"a": "b"}, "annotations": {"x": "y"}}}
    assert not data_loaded(cached)
    full = slim("Secret", {**partial, "apiVersion": "v1", "kind": "Secret", "data": {"password": "c2VjcmV0"}})
    assert data_loaded(full) and full["dataKeys"] == ["password"]
