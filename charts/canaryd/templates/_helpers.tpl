{{/* The release's full name: every object name starts with it (ClusterRoles included, so two releases
never collide on cluster-scoped names). */}}
{{- define "canaryd.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "canaryd.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "canaryd.labels" -}}
{{ include "canaryd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "canaryd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "canaryd.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "canaryd.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the alert URLs ("" when there is none). */}}
{{- define "canaryd.alertsSecret" -}}
{{- if .Values.alertsSecret.existingSecret -}}
{{- .Values.alertsSecret.existingSecret -}}
{{- else if or .Values.slack.url .Values.msteams.url -}}
{{- printf "%s-alerts" (include "canaryd.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* canaryd's rules on the namespaced resources it watches and writes: the same list as
manifests/rbac/clusterrole.yaml (e2e/test_helm.py compares them). */}}
{{- define "canaryd.rules" -}}
# Canaries: watched; patched (guarded by resourceVersion) for the revertOnDeletion finalizer.
- apiGroups: [flagger.app]
  resources: [canaries]
  verbs: [get, list, watch, patch]
# The state machine's durable state lives in .status.
- apiGroups: [flagger.app]
  resources: [canaries/status]
  verbs: [update, patch]
# blockOwnerDeletion on ownerReferences to a Canary; revertOnDeletion removes the finalizer.
- apiGroups: [flagger.app]
  resources: [canaries/finalizers]
  verbs: [update]
- apiGroups: [flagger.app]
  resources: [metrictemplates, alertproviders]
  verbs: [get, list, watch]
# The target is watched and scaled; <target>-primary is created and updated at promotion.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, update, patch]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, update, patch]
# Generated Services; ConfigMaps/Secrets tracked (checksums) and copied to -primary at promotion.
- apiGroups: [""]
  resources: [services, configmaps, secrets]
  verbs: [get, list, watch, create, update, patch]
- apiGroups: [networking.istio.io]
  resources: [virtualservices, destinationrules]
  verbs: [get, list, watch, create, update, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [metrics.keptn.sh]
  resources: [keptnmetrics]
  verbs: [get]
- apiGroups: [metrics.keptn.sh]
  resources: [analyses]
  verbs: [get, create, delete]
- apiGroups: [external.metrics.k8s.io]
  resources: ["*"]
  verbs: [list]
{{- end -}}

{{/* The one cluster-scoped read: canaryd checks at start that the served Canary CRD keeps its status
fields. */}}
{{- define "canaryd.crdRule" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  resourceNames: [canaries.flagger.app]
  verbs: [get]
{{- end -}}
