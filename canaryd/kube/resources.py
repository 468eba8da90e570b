"""The API resources canaryd reads or writes, and how their URLs are built."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """URL path of the collection (``name`` None) or of one object, optionally a subresource."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
            if subresource:
                base += f"/{subresource}"
        return base


CANARY = Resource("flagger.app", "v1beta1", "canaries", "Canary")
METRIC_TEMPLATE = Resource("flagger.app", "v1beta1", "metrictemplates", "MetricTemplate")
ALERT_PROVIDER = Resource("flagger.app", "v1beta1", "alertproviders", "AlertProvider")
DEPLOYMENT = Resource("apps", "v1", "deployments", "Deployment")
HPA = Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler")
SERVICE = Resource("", "v1", "services", "Service")
CONFIGMAP = Resource("", "v1", "configmaps", "ConfigMap")
SECRET = Resource("", "v1", "secrets", "Secret")
EVENT = Resource("", "v1", "events", "Event")
VIRTUAL_SERVICE = Resource("networking.istio.io", "v1beta1", "virtualservices", "VirtualService")
DESTINATION_RULE = Resource("networking.istio.io", "v1beta1", "destinationrules", "DestinationRule")
LEASE = Resource("coordination.k8s.io", "v1", "leases", "Lease")
NAMESPACE = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
# Keptn's objects, read (KeptnMetric) and written (Analysis) by the ``keptn`` metric provider only
KEPTN_METRIC = Resource("metrics.keptn.sh", "v1beta1", "keptnmetrics", "KeptnMetric")
KEPTN_ANALYSIS = Resource("metrics.keptn.sh", "v1beta1", "analyses", "Analysis")

# What canaryd list+watches into its cache (the one list: the runtime's informers and the informers'
# default). Events and Leases are written only, Namespaces read on demand.
WATCHED: tuple[Resource, ...] = (
    CANARY, DEPLOYMENT, HPA, SERVICE, CONFIGMAP, SECRET, VIRTUAL_SERVICE, DESTINATION_RULE, METRIC_TEMPLATE,
    ALERT_PROVIDER,
)
# Of those, the kinds a cluster holds by the thousand (Helm keeps every release in a Secret): watched
# cluster-wide, canaryd's cost would follow the cluster. The runtime watches them only in the namespaces
# that need them (runtime/scope.py: those holding Canaries; for Secrets also those holding MetricTemplates
# or AlertProviders, whose secretRef is checked from the cache); the rest of WATCHED is watched cluster-wide.
PER_NAMESPACE: tuple[Resource, ...] = (DEPLOYMENT, SERVICE, CONFIGMAP, SECRET)
CLUSTER_WIDE: tuple[Resource, ...] = tuple(res for res in WATCHED if res not in PER_NAMESPACE)
# Of those, the kinds listed and watched as metadata alone: a namespace's Secrets are mostly ones no Canary
# uses (Helm keeps every release in one, 100 KB and more), and their data must not reach canaryd unless a
# Canary references them; the referenced ones are read one by one when they change (runtime/config_data.py).
METADATA_ONLY: frozenset[str] = frozenset({SECRET.kind})
