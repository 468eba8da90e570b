"""The ``-primary`` rename of a pod spec and its inverse: which fields Flagger's promotion renames (tables)
and that the inverse undoes exactly that (a property over generated pod specs)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canaryd.model.podconfigs import pod_config_refs
from canaryd.model.primary import (
    from_primary_pod_spec,
    primary_name,
    source_name,
    to_primary_pod_spec,
)

TARGET = "podinfo"


def test_primary_name_and_source_name() -> None:
    assert primary_name("podinfo") == "podinfo-primary"
    assert source_name("podinfo-primary") == "podinfo"
    assert source_name("podinfo") is None
    assert source_name(primary_name("a-primary")) == "a-primary"


def _selector(value: str, key: str = "app") -> dict[str, Any]:
    return {"labelSelector": {"matchLabels": {key: value}}, "topologyKey": "kubernetes.io/hostname"}


# (where in the pod spec, the pod spec fragment, renamed?) — Flagger renames matchLabels values equal to
# the target's name in podAntiAffinity and topologySpreadConstraints only.
SELECTOR_CASES = [
    ("anti-affinity required", {"affinity": {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [_selector(TARGET)]}}}, True),
    ("anti-affinity preferred", {"affinity": {"podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "podAffinityTerm": _selector(TARGET)}]}}}, True),
    ("topology spread", {"topologySpreadConstraints": [{"maxSkew": 1, **_selector(TARGET)}]}, True),
    ("any key naming the target", {"topologySpreadConstraints": [_selector(TARGET, key="name")]}, True),
    ("pod affinity is kept", {"affinity": {"podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [_selector(TARGET)]}}}, False),
    ("another value is kept", {"topologySpreadConstraints": [_selector("other")]}, False),
    ("matchExpressions are kept", {"topologySpreadConstraints": [{"labelSelector": {"matchExpressions": [
        {"key": "app", "operator": "In", "values": [TARGET]}]}}]}, False),
]


@pytest.mark.parametrize(("where", "pod", "renamed"), SELECTOR_CASES, ids=[c[0] for c in SELECTOR_CASES])
def test_selector_rename(where: str, pod: dict[str, Any], renamed: bool) -> None:
    out = to_primary_pod_spec(pod, TARGET, ())
    text = repr(out)
    assert ("podinfo-primary" in text) is renamed, where
    assert from_primary_pod_spec(out, TARGET, ()) == pod
    assert "-primary" not in repr(pod)  # the input is untouched


def _env(kind: str, name: str) -> dict[str, Any]:
    key = "configMapKeyRef" if kind == "configmap" else "secretKeyRef"
    return {"name": "E", "valueFrom": {key: {"name": name, "key": "k"}}}


CONFIG_POD: dict[str, Any] = {
    "volumes": [
        {"name": "a", "configMap": {"name": "cm"}},
        {"name": "b", "secret": {"secretName": "sec"}},
        {"name": "c", "projected": {"sources": [{"configMap": {"name": "cm"}}, {"secret": {"name": "sec"}}]}},
    ],
    "containers": [{
        "name": "app",
        "env": [_env("configmap", "cm"), _env("secret", "sec"), _env("configmap", "x")],
        "envFrom": [{"configMapRef": {"name": "cm"}}, {"secretRef": {"name": "sec"}}],
    }],
    "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "sec"}}]}],
}


@pytest.mark.parametrize(("tracked", "names"), [
    ((), {"cm", "sec", "x"}),
    (("configmap/cm",), {"cm-primary", "sec", "x"}),
    (("configmap/cm", "secret/sec"), {"cm-primary", "sec-primary", "x"}),
    (("secret/cm",), {"cm", "sec", "x"}),  # the kind is part of the key
])
def test_config_rename_follows_the_tracked_set(tracked: tuple[str, ...], names: set[str]) -> None:
    out = to_primary_pod_spec(CONFIG_POD, TARGET, tracked)
    assert {ref.name for ref in pod_config_refs(out)} == names
    assert from_primary_pod_spec(out, TARGET, tracked) == CONFIG_POD


def test_inverse_leaves_untracked_primary_names() -> None:
    pod = {"containers": [{"name": "app", "envFrom": [{"configMapRef": {"name": "cm-primary"}}]}]}
    assert from_primary_pod_spec(pod, TARGET, ()) == pod
    assert from_primary_pod_spec(pod, TARGET, ("configmap/cm",))["containers"][0]["envFrom"] == [
        {"configMapRef": {"name": "cm"}}]


# ---- property: from(to(x)) == x over generated pod specs ----

NAMES = st.sampled_from(["cm", "sec", "podinfo", "other", "a-b"])
KINDS = st.sampled_from(["configmap", "secret"])


def _ref(name: str, optional: bool | None) -> dict[str, Any]:
    return {"name": name, **({} if optional is None else {"optional": optional})}


@st.composite
def config_ref_holders(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """One place naming a config: (where it goes, the fragment)."""
    kind, name = draw(KINDS), draw(NAMES)
    optional = draw(st.none() | st.booleans())
    place = draw(st.sampled_from(["volume", "projected", "env", "envFrom"]))
    if place == "volume":
        ref = {"secretName": name} if kind == "secret" else _ref(name, optional)
        return place, {"name": "v", ("secret" if kind == "secret" else "configMap"): ref}
    if place == "projected":
        return place, {"name": "p", "projected": {"sources": [
            {("secret" if kind == "secret" else "configMap"): _ref(name, optional)}]}}
    if place == "env":
        key = "secretKeyRef" if kind == "secret" else "configMapKeyRef"
        return place, {"name": "E", "valueFrom": {key: {**_ref(name, optional), "key": "k"}}}
    return place, {("secretRef" if kind == "secret" else "configMapRef"): _ref(name, optional)}


LABELS = st.dictionaries(st.sampled_from(["app", "name", "tier"]), NAMES, max_size=3)
SELECTORS = st.fixed_dictionaries({}, optional={
    "matchLabels": LABELS,
    "matchExpressions": st.lists(st.fixed_dictionaries({
        "key": st.just("app"), "operator": st.just("In"), "values": st.lists(NAMES, max_size=2),
    }), max_size=1),
})
TERM = st.fixed_dictionaries({"topologyKey": st.just("zone")}, optional={"labelSelector": SELECTORS})
TERMS = st.lists(TERM, max_size=2)
AFFINITY = st.fixed_dictionaries({}, optional={
    kind: st.fixed_dictionaries({}, optional={
        "requiredDuringSchedulingIgnoredDuringExecution": TERMS,
        "preferredDuringSchedulingIgnoredDuringExecution": st.lists(st.fixed_dictionaries(
            {"weight": st.just(1)}, optional={"podAffinityTerm": TERM}),
            max_size=2),
    }) for kind in ("podAffinity", "podAntiAffinity")
})


@st.composite
def pod_specs(draw: st.DrawFn) -> dict[str, Any]:
    holders = draw(st.lists(config_ref_holders(), max_size=6))
    container: dict[str, Any] = {"name": "app", "image": "podinfo:1"}
    pod: dict[str, Any] = {"containers": [container]}
    for place, fragment in holders:
        if place in ("volume", "projected"):
            pod.setdefault("volumes", []).append(fragment)
        else:
            in_init = draw(st.booleans())
            holder = pod.setdefault("initContainers", [{"name": "i"}])[0] if in_init else container
            holder.setdefault(place, []).append(fragment)
    if draw(st.booleans()):
        pod["affinity"] = draw(AFFINITY)
    if draw(st.booleans()):
        pod["topologySpreadConstraints"] = draw(TERMS)
    return pod


@settings(max_examples=300, deadline=None)
@given(pod=pod_specs(), target=NAMES, data=st.data())
def test_inverse_undoes_the_rename(pod: dict[str, Any], target: str, data: st.DataObject) -> None:
    keys = sorted(ref.key for ref in pod_config_refs(pod))
    tracked = data.draw(st.lists(st.sampled_from(keys), unique=True) if keys else st.just([]))
    renamed = to_primary_pod_spec(pod, target, tracked)
    assert from_primary_pod_spec(renamed, target, tracked) == pod
    # the rename did what it says: exactly the tracked configs now name their copies
    expected = {primary_name(k.split("/", 1)[1]) for k in tracked}
    assert {ref.name for ref in pod_config_refs(renamed)} >= expected
    assert all(ref.key not in tracked for ref in pod_config_refs(renamed))
