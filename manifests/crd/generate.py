"""Generate the three CRDs of group ``flagger.app`` (canaries, metrictemplates, alertproviders).

Why a generator: the Canary CRD serves ``v1beta1`` (stored) and the 2019 ``v1alpha3`` with the *same*
schema (no conversion webhook), and the analysis block is accepted under both ``analysis`` and the legacy
``canaryAnalysis``; writing that by hand would mean keeping four copies of one schema in step.

Run ``python manifests/crd/generate.py`` after editing; ``e2e/test_crds.py`` checks the YAML files are
up to date with this script.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

S = dict[str, Any]
GROUP = "flagger.app"
# Durations: whole numbers of ms, s, m, h in any combination ("1m30s", as Flagger accepts), anchored so
# nothing follows; canaryd/model/durations.py reads exactly this syntax (SPEC_PATTERN, SPEC_MAX_LENGTH).
DURATION = "^([0-9]+(ms|s|m|h))+$"
DURATION_MAX_LENGTH = 64


def duration(desc: str, low: str | None = None, high: str | None = None) -> S:
    """A duration string; with bounds, a CEL rule keeps it within them (canaryd's parser applies the same
    bounds: e2e/duration_cases.py is the table both are tested with)."""
    out = string(desc, pattern=DURATION, maxLength=DURATION_MAX_LENGTH)
    if low is not None and high is not None:
        out["x-kubernetes-validations"] = [rule(
            f"!self.matches('{DURATION}') || "
            f"(duration(self) >= duration('{low}') && duration(self) <= duration('{high}'))",
            f"must be a duration between {low} and {high}")]
    return out


# ---- small schema builders -------------------------------------------------------------------------


def string(desc: str = "", **kw: Any) -> S:
    return {"type": "string", **({"description": desc} if desc else {}), **kw}


def integer(desc: str = "", **kw: Any) -> S:
    return {"type": "integer", **({"description": desc} if desc else {}), **kw}


def number(desc: str = "", **kw: Any) -> S:
    return {"type": "number", **({"description": desc} if desc else {}), **kw}


def boolean(desc: str = "") -> S:
    return {"type": "boolean", **({"description": desc} if desc else {})}


def obj(props: dict[str, S], desc: str = "", required: list[str] | None = None,
        rules: list[S] | None = None) -> S:
    out: S = {"type": "object"}
    if desc:
        out["description"] = desc
    out["properties"] = props
    if required:
        out["required"] = required
    if rules:
        out["x-kubernetes-validations"] = rules
    return out


def array(items: S, desc: str = "", **kw: Any) -> S:
    return {"type": "array", **({"description": desc} if desc else {}), "items": items, **kw}


def str_map(desc: str = "") -> S:
    return {"type": "object", **({"description": desc} if desc else {}),
            "additionalProperties": {"type": "string"}}


def free(desc: str = "") -> S:
    """An object copied as-is into Istio objects (Istio's own schema validates it there)."""
    return {"type": "object", **({"description": desc} if desc else {}),
            "x-kubernetes-preserve-unknown-fields": True}


def rule(expr: str, message: str, field_path: str | None = None, reason: str | None = None) -> S:
    out: S = {"rule": expr, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    if reason:
        out["reason"] = reason
    return out


def ref(desc: str, kinds: list[str] | None = None) -> S:
    props: dict[str, S] = {"apiVersion": string(), "kind": string(), "name": string(minLength=1)}
    if kinds:
        props["kind"] = string(enum=kinds)
    return obj(props, desc, required=["apiVersion", "kind", "name"])


# ---- Canary --------------------------------------------------------------------------------------------


def custom_metadata(desc: str) -> S:
    return obj({"labels": str_map(), "annotations": str_map()}, desc)


def header_ops() -> S:
    return obj({"set": str_map(), "add": str_map(), "remove": array(string())})


def service_schema() -> S:
    return obj(
        {
            "name": string("Apex Service name; defaults to targetRef.name.", maxLength=253),
            "port": integer("Port of the generated Services.", format="int32", minimum=1, maximum=65535),
            "portName": string("Name of the Service port (default http)."),
            "targetPort": {"x-kubernetes-int-or-string": True,
                           "description": "Container port number or name (default: port)."},
            "appProtocol": string("Copied to the Service port; tcp makes the VirtualService use tcp routes."),
            "trafficDistribution": string(enum=["PreferClose", "PreferSameZone", "PreferSameNode"]),
            "portDiscovery": boolean("Add every container port to the generated Services."),
            "headless": boolean("Generate headless Services (clusterIP None)."),
            "timeout": string("HTTP route timeout of the VirtualService."),
            "backendTimeout": string("Gateway API only."),
            "gatewayRefs": array(free(), "Gateway API only."),
            "mirror": array(free(), "Gateway API only."),
            "gateways": array(string(), "Istio gateways of the VirtualService (default [mesh])."),
            "hosts": array(string(), "Hosts of the VirtualService; the apex name is added."),
            "delegation": boolean("Generate a delegate VirtualService (no hosts, no gateways)."),
            "trafficPolicy": free("Istio TrafficPolicy for both DestinationRules."),
            "match": array(free(), "Istio HTTPMatchRequest list for the VirtualService route."),
            "rewrite": obj({"uri": string(), "authority": string(), "type": string()}),
            "retries": obj({"attempts": integer(), "perTryTimeout": string(), "retryOn": string()}),
            "headers": obj({"request": header_ops(), "response": header_ops()}),
            "corsPolicy": obj({
                "allowOrigin": array(string()),
                "allowOrigins": array(free()),
                "allowMethods": array(string()),
                "allowHeaders": array(string()),
                "exposeHeaders": array(string()),
                "maxAge": string(),
                "allowCredentials": boolean(),
            }),
            "meshName": string("App Mesh only."),
            "backends": array(string(), "App Mesh only."),
            "apex": custom_metadata("Labels and annotations of the apex Service and the VirtualService."),
            "primary": custom_metadata("Labels and annotations of the -primary Service."),
            "canary": custom_metadata("Labels and annotations of the -canary Service."),
            "unmanagedMetadata": obj({"annotations": array(string()), "labels": array(string())}),
        },
        "How the Services, DestinationRules and the VirtualService are generated.",
        required=["port"],
    )


def verdict_options() -> dict[str, S]:
    """canaryd's verdict options of a check (docs/verdicts.md); ignored (pruned) by Flagger."""
    return {
        "consecutiveErrorLimit": integer("canaryd: errors (could not measure) in a row before one counts as "
                                         "a failed check (default 1: every one, as Flagger).", minimum=1),
        "nodata": string("canaryd: no data counts as a failed check (fail, the default) or not (ignore).",
                         enum=["fail", "ignore"]),
        "dryRun": boolean("canaryd: measured and recorded in status and metrics, never counts."),
        "initialDelay": duration("canaryd: not counted during the first D of a run, e.g. 2m.", "0s", "24h"),
    }


def metric_schema() -> S:
    return obj(
        {
            "name": string("Builtin name (request-success-rate, request-duration) or a label.", minLength=1),
            "interval": duration("Query window, e.g. 1m (default 1m), 1s to 24h.", "1s", "24h"),
            "threshold": number("Deprecated single threshold (min % for success rate, max ms otherwise)."),
            "thresholdRange": obj(
                {"min": number(), "max": number()},
                "Pass when min <= value <= max.",
                rules=[
                    rule("!has(self.min) || !has(self.max) || self.min <= self.max",
                         "thresholdRange.min must not be greater than thresholdRange.max"),
                ],
            ),
            "query": string("Deprecated inline PromQL."),
            "templateRef": obj({"name": string(minLength=1), "namespace": string()},
                               "A MetricTemplate (namespace defaults to the Canary's).", required=["name"]),
            "templateVariables": str_map("Values for {{ variables.KEY }} in the template."),
            "inconclusiveRange": obj(
                {"min": number(), "max": number()},
                "canaryd (MetricTemplate and query metrics): a value with min <= value <= max is "
                "inconclusive whatever thresholdRange says; the run waits for a person.",
                rules=[
                    rule("!has(self.min) || !has(self.max) || self.min <= self.max",
                         "inconclusiveRange.min must not be greater than inconclusiveRange.max"),
                ],
            ),
            **verdict_options(),
        },
        required=["name"],
    )


HOOK_TYPES = ["", "confirm-rollout", "pre-rollout", "rollout", "confirm-promotion", "post-rollout",
              "event", "rollback", "confirm-traffic-increase"]


def webhook_schema() -> S:
    return obj(
        {
            "name": string(minLength=1),
            "type": string("Hook type (empty = rollout).", enum=HOOK_TYPES),
            "url": string(minLength=1),
            "timeout": duration("Request timeout, e.g. 10s (default 10s), at most 10m.", "1ms", "10m"),
            "retries": integer(minimum=0, maximum=10),
            "disableTLS": boolean(),
            "muteAlert": boolean(),
            "metadata": str_map("Sent as the payload's metadata."),
            **verdict_options(),
        },
        required=["name", "url"],
    )


def alert_schema() -> S:
    return obj(
        {
            "name": string(minLength=1),
            "severity": string(enum=["", "info", "warn", "error"]),
            "providerRef": obj({"name": string(minLength=1), "namespace": string()}, required=["name"]),
        },
        required=["name", "providerRef"],
    )


def session_affinity_schema() -> S:
    return obj(
        {
            "cookieName": string(minLength=1),
            "primaryCookieName": string(),
            "domain": string(),
            "httpOnly": boolean(),
            "maxAge": integer(minimum=0),
            "partitioned": boolean(),
            "path": string(),
            "sameSite": string(enum=["Strict", "Lax", "None"]),
            "secure": boolean(),
        },
        required=["cookieName"],
        rules=[
            rule("!has(self.primaryCookieName) || self.primaryCookieName != self.cookieName",
                 "can't use the same cookie name for both primary and cookie name; "
                 "please update them to be different"),
        ],
    )


def judge_metric_schema() -> S:
    return obj(
        {
            "name": string("The metric's name in the report.", minLength=1),
            "preset": string("An Istio preset instead of a query.",
                             enum=["request-success-rate", "request-latency-p50", "request-latency-p99"]),
            "query": string("PromQL template rendered per side: {{ target }} is the canary's or the "
                            "primary's workload, {{ interval }} the rate window; one series per side."),
            "direction": string("Which change is bad (default either).",
                                enum=["increase", "decrease", "either"]),
            "tolerance": number("Allowed relative change in the bad direction, 0.15 = 15 % (default 0; "
                                "presets: latency 0.15, success rate 0.01).", minimum=0),
            "weight": number("Its group's share of the score, in %.", minimum=0, maximum=100),
            "critical": boolean("A High/Low (or no data) fails the judge whatever the score."),
            "group": string("Scoring group (default: the metric's name)."),
            "nodata": string("ignore: left out of the score (default); fail: counts against its group.",
                             enum=["ignore", "fail"]),
            "dryRun": boolean("Reported, never scored."),
            "interval": duration("Rate window rendered as {{ interval }} (default: the judge's step); "
                                 "at most the step.", "1s", "24h"),
            "templateVariables": str_map("Values for {{ variables.KEY }} in the query."),
        },
        required=["name"],
        rules=[rule("!(has(self.preset) && has(self.query))", "set either preset or query, not both"),
               rule("has(self.preset) || has(self.query)", "set query or preset")],
    )


def judge_schema() -> S:
    return obj(
        {
            "name": string("The check's name (default judge)."),
            "preset": string("istio: request success rate and latency p50/p99 per side.", enum=["istio"]),
            "metrics": array(judge_metric_schema(), maxItems=32),
            "step": duration("Range query step (default 1m), at least every rate window of the queries.",
                             "1s", "24h"),
            "lookback": duration("The judged window: the last this long (default minSamples x step).",
                                 "1s", "24h"),
            "minSamples": integer("Points needed per side (default 20); fewer: no data.", minimum=2,
                                  maximum=1000),
            "confidence": number("Confidence of the Mann-Whitney interval (default 0.98).", minimum=0,
                                 maximum=1, exclusiveMinimum=True, exclusiveMaximum=True),
            "pass": number("Score to pass (default 95).", minimum=0, maximum=100),
            "marginal": number("Score below which the judge fails (default 75); between: inconclusive.",
                               minimum=0, maximum=100),
            "nodata": string("The judge without enough data: fail (default) or ignore.",
                             enum=["fail", "ignore"]),
            "dryRun": boolean("Measured and reported, never counts."),
            "consecutiveErrorLimit": integer("Errors in a row before one counts (default 1).", minimum=1),
            "initialDelay": duration("Not counted during the first D of a run.", "0s", "24h"),
        },
        "canaryd: the statistical judge, canary against primary (docs/judge.md); ignored by Flagger.",
    )


def analysis_schema(field: str) -> S:
    percent = {"minimum": 0, "maximum": 100}
    one_of = ("(has(self.stepWeight) ? 1 : 0) + (has(self.stepWeights) ? 1 : 0) "
              "+ (has(self.iterations) ? 1 : 0) == 1")
    return obj(
        {
            "interval": duration("Time between analysis steps, e.g. 1m or 30s; 1s to 24h.", "1s", "24h"),
            "threshold": integer("Failed checks tolerated before rollback.", minimum=0),
            "maxWeight": integer("Largest canary weight before promotion (default 100).", **percent),
            "stepWeight": integer("Canary weight increment per step.", **percent),
            "stepWeights": array(integer(minimum=1, maximum=100), "Canary weights, strictly increasing.",
                                 minItems=1, maxItems=100),
            "stepWeightPromotion": integer("Primary weight increment per step at promotion.", **percent),
            "iterations": integer("Number of steps of a Blue/Green or A/B run.", minimum=0),
            "mirror": boolean("Mirror traffic to the canary (first step / whole Blue/Green run)."),
            "mirrorWeight": integer("Percentage of mirrored requests.", **percent),
            "match": array(free(), "A/B testing: Istio HTTPMatchRequest list."),
            "primaryReadyThreshold": integer("% of primary replicas that must be available.", **percent),
            "canaryReadyThreshold": integer("% of canary replicas that must be available.", **percent),
            "sessionAffinity": session_affinity_schema(),
            "metrics": array(metric_schema(), maxItems=64),
            "webhooks": array(webhook_schema(), maxItems=64),
            "alerts": array(alert_schema(), maxItems=64),
            "inconclusiveTimeout": duration("canaryd: how long an inconclusive step waits for a promote or "
                                            "abort request before rolling back (default: "
                                            "progressDeadlineSeconds).", "1s", "24h"),
            "judge": judge_schema(),
        },
        "Analysis: steps, checks and hooks." + ("" if field == "analysis" else " (deprecated name)"),
        required=["interval", "threshold"],
        rules=[
            rule(one_of, f"exactly one of {field}.stepWeight (progressive traffic), {field}.stepWeights "
                 f"(a list of weights) or {field}.iterations (Blue/Green, A/B) must be set"),
            rule("!has(self.stepWeights) || (self.stepWeights.isSorted() && "
                 "self.stepWeights.all(w, self.stepWeights.exists_one(v, v == w)))",
                 "stepWeights must be strictly increasing", field_path=".stepWeights"),
        ],
    )


PROVIDERS = ["apisix", "appmesh", "appmesh:v1beta2", "contour", "gatewayapi:v1", "gatewayapi:v1beta1",
             "gloo", "istio", "knative", "kubernetes", "kuma", "linkerd", "nginx", "osm", "skipper",
             "smi:v1alpha1", "smi:v1alpha2", "smi:v1alpha3", "traefik"]


def canary_spec_schema() -> S:
    return obj(
        {
            "provider": string("Mesh provider (canaryd drives Istio).", enum=PROVIDERS),
            "metricsServer": string("Prometheus address for builtin and inline checks."),
            "targetRef": ref("The Deployment to release.", ["Deployment", "DaemonSet", "Service"]),
            "autoscalerRef": obj(
                {
                    "apiVersion": string(),
                    "kind": string(enum=["HorizontalPodAutoscaler", "ScaledObject"]),
                    "name": string(minLength=1),
                    "primaryScalerQueries": str_map(),
                    "primaryScalerReplicas": obj({"minReplicas": integer(minimum=1),
                                                  "maxReplicas": integer(minimum=1)}),
                },
                "The target's autoscaler, copied for the primary.",
                required=["apiVersion", "kind", "name"],
            ),
            "ingressRef": ref("NGINX only."),
            "routeRef": ref("APISIX only."),
            "upstreamRef": ref("Gloo only."),
            "service": service_schema(),
            "analysis": analysis_schema("analysis"),
            "canaryAnalysis": analysis_schema("canaryAnalysis"),
            "progressDeadlineSeconds": integer("Seconds to wait for a rollout (default 600, at most 24h).",
                                               format="int32", minimum=0, maximum=86400),
            "skipAnalysis": boolean("Promote without analysis."),
            "revertOnDeletion": boolean("Restore the target when the Canary is deleted."),
            "suspend": boolean("Pause the Canary."),
        },
        "CanarySpec as in Flagger v1beta1 (plus the 2019 canaryAnalysis alias).",
        required=["targetRef", "service"],
    )


CHECK_VERDICTS = ["pass", "fail", "error", "nodata", "inconclusive"]
PHASES = ["", "Initializing", "Initialized", "Waiting", "Progressing", "WaitingPromotion", "Promoting",
          "Finalising", "Succeeded", "Failed", "Terminating", "Terminated"]


def canary_status_schema() -> S:
    time = {"type": "string", "format": "date-time", "nullable": True}
    return obj(
        {
            "phase": string(enum=PHASES),
            "failedChecks": integer(),
            "canaryWeight": integer(),
            "iterations": integer(),
            "trackedConfigs": str_map("configmap/<name> or secret/<name> -> checksum"),
            "lastAppliedSpec": string(),
            "lastPromotedSpec": string(),
            "lastTransitionTime": {**time, "description": "Time of the last status write."},
            "sessionAffinityCookie": string(),
            "primarySessionAffinityCookie": string(),
            "previousSessionAffinityCookie": string(),
            "conditions": array(obj(
                {
                    "type": string(),
                    "status": string(enum=["True", "False", "Unknown"]),
                    "reason": string(),
                    "message": string(),
                    "lastUpdateTime": {"type": "string", "format": "date-time"},
                    "lastTransitionTime": {"type": "string", "format": "date-time"},
                },
                required=["type", "status"],
            )),
            # canaryd's own fields
            "nextStepAt": {**time, "description": "canaryd: when the next analysis step is due."},
            "waitingSince": {**time, "description": "canaryd: start of the current wait for a rollout."},
            "errorStreaks": {"type": "object", "additionalProperties": integer(),
                             "description": "canaryd: errors in a row per check (metric/<name>, "
                                            "webhook/<name>, judge)."},
            "inconclusiveSince": {**time, "description": "canaryd: the run waits for a person on "
                                                          "inconclusive checks since then."},
            "checks": array(obj(
                {
                    "name": string(),
                    "verdict": string(enum=CHECK_VERDICTS),
                    "value": number(nullable=True),
                    "threshold": string(),
                    "message": string(),
                    "counted": boolean("canaryd: false when the result did not count (dry run, initial "
                                       "delay, tolerated error, ignored no data)."),
                    "note": string("canaryd: why the result did (not) count."),
                    "dryRun": boolean("canaryd: the check is a dry run."),
                    "kind": string("canaryd: metric (default), webhook or judge."),
                    "judge": free("canaryd: the judge's report (per metric: samples, medians, ratio, U, "
                                  "p-value, classification; score, verdict)."),
                },
                required=["name", "verdict"],
            ), "canaryd: measurements of the last analysis step."),
            "message": string("canaryd: the last reason shown to users."),
            "observedGeneration": integer(format="int64"),
            "mirrored": boolean("canaryd: the current step mirrors traffic to the canary."),
            "ignoredFieldsGeneration": integer(
                "canaryd: the generation whose fields without effect were named in a Warning Event.",
                format="int64"),
            "lastRequest": obj(
                {
                    "id": string(maxLength=80),
                    "action": string(),
                    "result": string(enum=["done", "refused", "ignored"]),
                    "message": string(),
                    "at": {"type": "string", "format": "date-time"},
                },
                "canaryd: the answer to the last canaryd.io/request annotation (acted on once per id).",
                required=["id", "result"],
            ),
            "pausedBy": string("canaryd: the id of the pause request in force."),
            "promoteRequested": boolean("canaryd: a promote request skipped the rest of the analysis."),
            "runStartedAt": {**time, "description": "canaryd: when the current run began."},
            "runImage": string("canaryd: the target's first container image in the current run."),
            "weights": array(obj(
                {"at": {"type": "string", "format": "date-time"}, "weight": integer()},
                required=["at", "weight"],
            ), "canaryd: per-step canary weights of the current run.", maxItems=100),
            "stepChecks": array(obj(
                {
                    "at": {"type": "string", "format": "date-time"},
                    "weight": integer(),
                    "checks": array(obj(
                        {"name": string(), "value": number(nullable=True),
                         "verdict": string(enum=CHECK_VERDICTS)},
                        required=["name", "verdict"],
                    )),
                },
                required=["at"],
            ), "canaryd: each analysis step's check values in the current run (thresholds in checks).",
                maxItems=20),
            "scaleDownGeneration": integer(
                "canaryd: the target's generation when a phase at rest was decided with its scale-to-zero "
                "(a lost scale is done again while the target still has it).", format="int64"),
            "history": array(obj(
                {
                    "revision": string(),
                    "image": string(),
                    "startedAt": {"type": "string", "format": "date-time"},
                    "endedAt": {"type": "string", "format": "date-time"},
                    "outcome": string(enum=["promoted", "rolled back", "aborted", "superseded"]),
                    "reason": string(),
                    "maxWeight": integer(),
                    "failedChecks": array(obj(
                        {"name": string(), "value": number(nullable=True), "threshold": string()},
                    )),
                    "judge": free("canaryd: the judge's last report in the run, shortened."),
                },
                required=["revision", "outcome"],
            ), "canaryd: the last runs, newest first.", maxItems=10),
        },
    )


def printer_columns(analysis_path: str) -> list[S]:
    a = f".spec.{analysis_path}"
    return [
        {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Weight", "type": "string", "jsonPath": ".status.canaryWeight"},
        {"name": "Suspended", "type": "boolean", "jsonPath": ".spec.suspend", "priority": 1},
        {"name": "FailedChecks", "type": "string", "jsonPath": ".status.failedChecks", "priority": 1},
        {"name": "Interval", "type": "string", "jsonPath": f"{a}.interval", "priority": 1},
        {"name": "Mirror", "type": "boolean", "jsonPath": f"{a}.mirror", "priority": 1},
        {"name": "StepWeight", "type": "string", "jsonPath": f"{a}.stepWeight", "priority": 1},
        {"name": "StepWeights", "type": "string", "jsonPath": f"{a}.stepWeights", "priority": 1},
        {"name": "MaxWeight", "type": "string", "jsonPath": f"{a}.maxWeight", "priority": 1},
        {"name": "LastTransitionTime", "type": "string", "jsonPath": ".status.lastTransitionTime"},
    ]


def root_schema(spec: S, status: S) -> S:
    return {"openAPIV3Schema": obj(
        {"apiVersion": string(), "kind": string(), "metadata": {"type": "object"}, "spec": spec,
         "status": status},
        required=["spec"],
    )}


def crd(plural: str, kind: str, versions: list[S]) -> S:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "annotations": {"helm.sh/resource-policy": "keep"}},
        "spec": {
            "group": GROUP,
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                      "singular": kind.lower(), "categories": ["all"]},
            "scope": "Namespaced",
            "versions": versions,
        },
    }


def canary_crd() -> S:
    schema = root_schema(canary_spec_schema(), canary_status_schema())
    schema["openAPIV3Schema"]["properties"]["spec"].setdefault("x-kubernetes-validations", []).append(
        rule("!(has(self.analysis) && has(self.canaryAnalysis))",
             "set either analysis or the deprecated canaryAnalysis, not both"))

    def version(name: str, storage: bool, analysis_path: str) -> S:
        return {"name": name, "served": True, "storage": storage, "subresources": {"status": {}},
                "additionalPrinterColumns": printer_columns(analysis_path), "schema": schema}

    return crd("canaries", "Canary", [version("v1beta1", True, "analysis"),
                                      version("v1alpha3", False, "canaryAnalysis")])


def generic_status() -> S:
    return obj({"conditions": array(obj(
        {"type": string(), "status": string(enum=["True", "False", "Unknown"]), "reason": string(),
         "message": string(), "lastUpdateTime": {"type": "string", "format": "date-time"},
         "lastTransitionTime": {"type": "string", "format": "date-time"}},
        required=["type", "status"]))})


METRIC_PROVIDERS = ["prometheus", "influxdb", "datadog", "externalmetrics", "stackdriver", "cloudwatch",
                    "newrelic", "graphite", "dynatrace", "keptn", "splunk"]


def metrictemplate_crd() -> S:
    spec = obj(
        {
            "provider": obj(
                {
                    "type": string("Metrics provider.", enum=METRIC_PROVIDERS),
                    "address": string("API address, e.g. http://prometheus.istio-system:9090."),
                    "headers": {"type": "object", "description": "HTTP headers sent with each query.",
                                "additionalProperties": array(string())},
                    "secretRef": obj({"name": string(minLength=1)},
                                     "Secret with token, or username and password.", required=["name"]),
                    "region": string(),
                    "insecureSkipVerify": boolean(),
                },
                required=["type"],
            ),
            "query": string("Go text/template query: {{ name }}, {{ namespace }}, {{ target }}, "
                            "{{ service }}, {{ interval }}, {{ variables.KEY }}.", minLength=1),
        },
        required=["provider", "query"],
    )
    version = {"name": "v1beta1", "served": True, "storage": True, "subresources": {"status": {}},
               "additionalPrinterColumns": [
                   {"name": "Provider", "type": "string", "jsonPath": ".spec.provider.type"},
                   {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
               "schema": root_schema(spec, generic_status())}
    return crd("metrictemplates", "MetricTemplate", [version])


def alertprovider_crd() -> S:
    spec = obj(
        {
            "type": string("Notification service.", enum=["slack", "msteams", "discord", "rocket", "gchat"]),
            "channel": string(),
            "username": string(),
            "address": string("Webhook URL (or from secretRef's address key)."),
            "proxy": string(),
            "secretRef": obj({"name": string(minLength=1)}, "Secret with address (and token).",
                             required=["name"]),
        },
        required=["type"],
        rules=[
            rule("has(self.address) || has(self.secretRef)", "one of address or secretRef must be set"),
        ],
    )
    version = {"name": "v1beta1", "served": True, "storage": True, "subresources": {"status": {}},
               "additionalPrinterColumns": [
                   {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
                   {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
               "schema": root_schema(spec, generic_status())}
    return crd("alertproviders", "AlertProvider", [version])


def render(doc: S) -> str:
    header = "# Generated by manifests/crd/generate.py: edit that script, then run it.\n"

    class NoAlias(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return header + yaml.dump(doc, Dumper=NoAlias, sort_keys=False, width=110)


FILES = {"canaries.yaml": canary_crd, "metrictemplates.yaml": metrictemplate_crd,
         "alertproviders.yaml": alertprovider_crd}


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    # the Helm chart ships the same CRDs (Helm installs a chart's crds/ before its templates)
    places = (here, here.parents[1] / "charts" / "canaryd" / "crds")
    check = "--check" in argv
    stale = []
    for fname, build in FILES.items():
        text = render(build())
        for place in places:
            path = place / fname
            if check:
                if not path.exists() or path.read_text() != text:
                    stale.append(str(path.relative_to(here.parents[1])))
            else:
                path.write_text(text)
    if stale:
        print("stale (run python manifests/crd/generate.py):", *stale)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
