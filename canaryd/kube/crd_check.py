"""At start: is the served Canary CRD canaryd's (with its status fields), or Flagger's?

Why: Helm never upgrades CRDs that already exist, and Flagger's Canary CRD has a closed status schema,
so after a migration the API server would silently prune the status fields only canaryd writes
(``checks``, ``nextStepAt``, …) and canaryd would lose its durable state on every write. One GET
(RBAC: ``get`` on this one named CRD; without it, the API server's OpenAPI v3 document of the group) tells;
a missing field stops the process with how to fix it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from canaryd.kube.errors import ApiError, Forbidden, NotFound
from canaryd.kube.resources import CANARY, Resource

CRD = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
               namespaced=False)
CANARY_CRD_NAME = f"{CANARY.plural}.{CANARY.group}"
# the status fields of manifests/crd/canaries.yaml that Flagger v1.44's CRD lacks and canaryd writes
CANARYD_STATUS_FIELDS: tuple[str, ...] = (
    "checks", "errorStreaks", "history", "ignoredFieldsGeneration", "inconclusiveSince", "lastRequest",
    "message", "mirrored", "nextStepAt", "observedGeneration", "pausedBy", "promoteRequested", "runImage",
    "runStartedAt", "scaleDownGeneration", "stepChecks", "waitingSince", "weights",
)
FIX = "kubectl apply --server-side --force-conflicts -f manifests/crd/"  # Helm or kubectl owned them


class StartError(Exception):
    """canaryd cannot start; the text is the one line printed before exiting."""


def missing_status_fields(crd: Mapping[str, Any], version: str = CANARY.version,
                          wanted: Iterable[str] = CANARYD_STATUS_FIELDS) -> list[str]:
    """The wanted status fields the CRD's schema for ``version`` would prune (all of them when that
    version is not served). An open status (``x-kubernetes-preserve-unknown-fields``) prunes none."""
    for entry in (crd.get("spec") or {}).get("versions") or []:
        if not isinstance(entry, dict) or entry.get("name") != version or not entry.get("served"):
            continue
        schema = ((entry.get("schema") or {}).get("openAPIV3Schema") or {})
        status = (schema.get("properties") or {}).get("status")
        if status is None:
            return list(wanted) if not schema.get("x-kubernetes-preserve-unknown-fields") else []
        if status.get("x-kubernetes-preserve-unknown-fields"):
            return []
        known = status.get("properties") or {}
        return [name for name in wanted if name not in known]
    return list(wanted)


async def check_canary_crd(client: Any) -> None:
    """Raise ``StartError`` (one line) when the served Canary CRD would prune canaryd's status fields, is
    missing, or the API server cannot be asked. ``client``: a ``KubeClient``."""
    try:
        crd = await client.get(CRD, None, CANARY_CRD_NAME)
    except NotFound:
        raise StartError(f"the {CANARY_CRD_NAME} CRD is not installed: {FIX}") from None
    except Forbidden:
        # Flagger's own ClusterRole (its Deployment run unchanged with canaryd's image) has no such rule:
        # the published OpenAPI schema, open to every authenticated identity, tells the same
        crd = await _from_openapi(client)
    except ApiError as err:  # 401 (credentials), 5xx after the client's retries
        raise StartError(f"cannot read the {CANARY_CRD_NAME} CRD: {_one_line(err)}") from None
    except (OSError, TimeoutError) as err:
        raise StartError(f"cannot reach the API server: {_one_line(err)}") from None
    missing = missing_status_fields(crd)
    if missing:
        raise StartError(f"the served {CANARY_CRD_NAME} CRD is not canaryd's (Flagger's?): its "
                         f"{CANARY.version} status lacks {', '.join(missing)}, which the API server would "
                         f"drop; update the CRDs: {FIX}")


OPENAPI_PATH = f"/openapi/v3/apis/{CANARY.group}/{CANARY.version}"
OPENAPI_SCHEMA = f"{'.'.join(reversed(CANARY.group.split('.')))}.{CANARY.version}.{CANARY.kind}"


async def _from_openapi(client: Any) -> dict[str, Any]:
    """The Canary schema from the API server's OpenAPI v3 document, shaped as a one-version CRD."""
    try:
        doc = await client.get_document(OPENAPI_PATH)
    except (ApiError, OSError, TimeoutError) as err:
        raise StartError(f"cannot read the {CANARY_CRD_NAME} CRD (RBAC: get on customresourcedefinitions "
                         f"{CANARY_CRD_NAME}, see manifests/rbac/) nor {OPENAPI_PATH}: {_one_line(err)}"
                         ) from None
    schema = ((doc.get("components") or {}).get("schemas") or {}).get(OPENAPI_SCHEMA)
    if not isinstance(schema, dict):
        raise StartError(f"the {CANARY_CRD_NAME} CRD is not installed ({OPENAPI_PATH} has no "
                         f"{OPENAPI_SCHEMA}): {FIX}")
    return {"spec": {"versions": [{"name": CANARY.version, "served": True,
                                   "schema": {"openAPIV3Schema": schema}}]}}


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:300]
