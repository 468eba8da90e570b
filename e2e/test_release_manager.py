"""Who may operate a release is who may patch the Canary: a ServiceAccount bound (in one namespace) to
manifests/rbac/release-manager.yaml writes a request with plain ``kubectl annotate``, reads the Events,
and is refused the status (canaryd's answer) and everything else; the role is aggregated to ``edit``."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from e2e.kubectl import Kubectl

ROOT = Path(__file__).resolve().parents[1]
ROLE = ROOT / "manifests" / "rbac" / "release-manager.yaml"


def canary(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": namespace},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                     "service": {"port": 9898},
                     "analysis": {"interval": "1m", "threshold": 2, "maxWeight": 50, "stepWeight": 10}}}


def bound(bed: Any, admin: Kubectl, namespace: str, name: str, role: str) -> Kubectl:
    admin.ok("-n", namespace, "create", "rolebinding", name, f"--clusterrole={role}",
             f"--serviceaccount={namespace}:{name}")
    return Kubectl(bed.kubeconfig_for_serviceaccount(namespace, name, duration="10m"))


def test_a_release_manager_writes_a_request_and_nothing_else(bed: Any, namespace: str) -> None:
    admin = Kubectl(str(bed.kubeconfig))
    admin.ok("apply", "-f", str(ROLE))
    admin.apply(canary(namespace))
    user = bound(bed, admin, namespace, "releaser", "canaryd-release-manager")
    request = {"id": str(uuid.uuid4()), "action": "abort"}
    p = user.run("-n", namespace, "annotate", "--overwrite", "canaries.flagger.app", "podinfo",
                 f"canaryd.io/request={json.dumps(request)}")
    assert p.returncode == 0, p.stderr
    got = admin.ok("-n", namespace, "get", "canaries.flagger.app", "podinfo",
                   "-o", "jsonpath={.metadata.annotations.canaryd\\.io/request}")
    assert json.loads(got) == request
    for verb, res, sub in [("get", "events", ""), ("watch", "canaries.flagger.app", "")]:
        args = ["auth", "can-i", verb, res, "-n", namespace] + (["--subresource", sub] if sub else [])
        assert user.run(*args).stdout.strip() == "yes", (verb, res)
    refused = [("patch", "canaries.flagger.app", "status"), ("delete", "canaries.flagger.app", ""),
               ("patch", "deployments.apps", ""), ("create", "canaries.flagger.app", "")]
    for verb, res, sub in refused:
        args = ["auth", "can-i", verb, res, "-n", namespace] + (["--subresource", sub] if sub else [])
        assert user.run(*args).stdout.strip() == "no", (verb, res, sub)
    # only in its namespace
    assert user.run("auth", "can-i", "patch", "canaries.flagger.app", "-n", "default").stdout.strip() == "no"


def test_the_role_is_aggregated_to_edit(bed: Any, namespace: str) -> None:
    admin = Kubectl(str(bed.kubeconfig))
    admin.ok("apply", "-f", str(ROLE))
    editor = bound(bed, admin, namespace, "editor", "edit")
    deadline = time.monotonic() + 60  # the aggregation controller merges the rules asynchronously
    while True:
        rules = json.loads(admin.ok("get", "clusterrole", "edit", "-o", "json")).get("rules") or []
        if any("canaries" in (r.get("resources") or []) and "patch" in (r.get("verbs") or []) for r in rules):
            break
        assert time.monotonic() < deadline, "edit never gained canaryd-release-manager's rules"
        time.sleep(0.5)
    can = editor.run("auth", "can-i", "patch", "canaries.flagger.app", "-n", namespace).stdout.strip()
    assert can == "yes"
