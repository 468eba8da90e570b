"""The one view of a cached Deployment the engine decides from (runtime/snapshot.py)."""

from __future__ import annotations

from canaryd.engine.revision import pod_template_hash
from canaryd.runtime.snapshot import deployment_view


def test_deployment_view() -> None:
    template = {"spec": {"containers": [{"name": "app", "image": "podinfo:1"}]}}
    obj = {"metadata": {"name": "podinfo", "generation": 5},
           "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "podinfo"}}, "template": template},
           "status": {"observedGeneration": 4, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1,
                      "conditions": [{"type": "Available", "status": "True"}]}}
    v = deployment_view(obj, ("app", "name", "app.kubernetes.io/name"))
    assert (v.name, v.selector_label, v.selector_value, v.spec_replicas, v.generation,
            v.observed_generation) == ("podinfo", "app.kubernetes.io/name", "podinfo", 1, 5, 4)
    assert (v.status_replicas, v.updated_replicas, v.available_replicas, v.ready_replicas) == (1, 1, 1, 0)
    assert v.template_hash == pod_template_hash(template) and v.conditions == ({"type": "Available",
                                                                                 "status": "True"},)
    unlabelled = {"spec": {"selector": {"matchLabels": {"k": "v"}}, "replicas": 0}}
    bare = deployment_view(unlabelled, ("app",))
    assert bare.selector_label is None and bare.selector_value is None and bare.spec_replicas == 0
