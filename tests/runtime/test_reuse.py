"""What a task reuses between its passes (runtime/spec_cache.py, runtime/snapshot.Derived): the parse of its
Canary and the pod-template hashes of its Deployments stand while ``metadata.generation`` (and the uid)
stay, and are computed again the moment either moves; an object without them is never reused."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from canaryd.engine.revision import pod_template_hash, templates_match
from canaryd.model.spec import CanarySpec, SpecError
from canaryd.runtime.snapshot import Derived
from canaryd.runtime.spec_cache import SpecCache
from canaryd.settings import Settings


def canary(generation: int | None = 1, uid: str | None = "u1", max_weight: int = 50,
           status: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "podinfo", "namespace": "test"}
    if uid is not None:
        meta["uid"] = uid
    if generation is not None:
        meta["generation"] = generation
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": meta,
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                     "service": {"port": 9898},
                     "analysis": {"interval": "10s", "threshold": 2, "maxWeight": max_weight,
                                  "stepWeight": 10}},
            "status": status or {}}


def max_weight(parsed: CanarySpec | SpecError) -> int:
    assert isinstance(parsed, CanarySpec), parsed
    return parsed.analysis.max_weight


# (second object, parsed again?, the max weight the second parse gives)
SPEC_TABLE = [
    (canary(status={"phase": "Progressing", "canaryWeight": 10}), False, 50),  # a status write
    (canary(generation=2, max_weight=30), True, 30),  # a spec change
    (canary(uid="u2", max_weight=30), True, 30),  # deleted and re-created
    (canary(generation=None, max_weight=30), True, 30),  # no generation: never reused
]


@pytest.mark.parametrize(("second", "again", "weight"), SPEC_TABLE)
def test_the_parse_stands_while_uid_and_generation_do(second: dict[str, Any], again: bool,
                                                      weight: int) -> None:
    cache = SpecCache(Settings())
    first = cache.parse(canary())
    assert max_weight(first) == 50 and cache.parses == 1
    parsed = cache.parse(second)
    assert cache.parses == 1 + again
    assert max_weight(parsed) == weight
    assert (parsed is first) is not again


def test_an_object_without_a_uid_is_parsed_every_time() -> None:
    cache = SpecCache(Settings())
    cache.parse(canary(uid=None))
    cache.parse(canary(uid=None))
    assert cache.parses == 2


def test_a_spec_error_is_reused_too_and_dropped_with_the_next_generation() -> None:
    cache = SpecCache(Settings())
    bad = canary()
    bad["spec"]["provider"] = "linkerd"
    assert isinstance(cache.parse(bad), SpecError) and isinstance(cache.parse(bad), SpecError)
    assert cache.parses == 1
    assert max_weight(cache.parse(canary(generation=2))) == 50 and cache.parses == 2


def deployment(image: str, generation: int | None = 1, uid: str = "d1",
               name: str = "podinfo") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "test", "uid": uid}
    if generation is not None:
        meta["generation"] = generation
    return {"metadata": meta, "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": "podinfo", "image": image}]}}}}


def test_a_template_hash_is_reused_for_the_same_generation_only() -> None:
    derived = Derived()
    a = deployment("podinfo:6.0.0")
    assert derived.template_hash(a) == pod_template_hash(a["spec"]["template"])
    # the same (uid, generation): the API server guarantees the same spec, so the hash is not recomputed
    # (shown by handing it a different template under the same version)
    same_version = deployment("podinfo:6.0.1")
    assert derived.template_hash(same_version) == pod_template_hash(a["spec"]["template"])
    bumped = deployment("podinfo:6.0.1", generation=2)
    assert derived.template_hash(bumped) == pod_template_hash(bumped["spec"]["template"])
    recreated = deployment("podinfo:6.0.2", uid="d2")
    assert derived.template_hash(recreated) == pod_template_hash(recreated["spec"]["template"])
    unversioned = deployment("podinfo:6.0.3", generation=None)
    assert derived.template_hash(unversioned) == pod_template_hash(unversioned["spec"]["template"])


def primary_of(target: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    primary = copy.deepcopy(target)
    primary["metadata"].update(name="podinfo-primary", uid="p1", generation=generation)
    primary["spec"]["selector"]["matchLabels"]["app"] = "podinfo-primary"
    primary["spec"]["template"]["metadata"]["labels"]["app"] = "podinfo-primary"
    return primary


def test_templates_match_is_reused_until_either_deployment_moves() -> None:
    derived = Derived()
    target = deployment("podinfo:6.0.0")
    primary = primary_of(target)

    def match(t: dict[str, Any], p: dict[str, Any]) -> bool:
        return derived.templates_match(t, p, "app", target_name="podinfo", tracked=[])

    def computed(t: dict[str, Any], p: dict[str, Any]) -> bool:
        return templates_match(t["spec"]["template"], p["spec"]["template"], "app", target_name="podinfo",
                               tracked=[])

    assert match(target, primary) is computed(target, primary) is True
    new = deployment("podinfo:6.0.1", generation=2)
    assert match(new, primary) is computed(new, primary) is False
    promoted = primary_of(new, generation=2)
    assert match(new, promoted) is computed(new, promoted) is True
    # a different tracked set is a different question
    assert derived.templates_match(new, promoted, "app", target_name="podinfo", tracked=["configmap/x"]) is \
        templates_match(new["spec"]["template"], promoted["spec"]["template"], "app", target_name="podinfo",
                        tracked=["configmap/x"])
