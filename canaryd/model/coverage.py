"""What canaryd does with every field of the Canary, MetricTemplate and AlertProvider CRDs: the one table.

Each row is *supported* (with the test that shows its effect), *rejected* (with the message, shown in a
test), *ignored* (accepted without effect although Flagger's Istio mode has one: the parser records it in
``CanarySpec.ignored_fields`` and the engine names it in one Warning Event per generation) or
*not in Istio mode* (accepted without effect, as Flagger's own Istio mode does). A subtree copied verbatim
into an Istio object (``corsPolicy``, ``match``…) is one row. ``tests/model/test_coverage.py`` walks the CRD
schemas and fails for a field without a row, a named test that does not exist, or a docs section that
differs from :func:`render` (``python3 -m canaryd.model.coverage --write docs/compatibility.md``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from canaryd.model.providers import UNIMPLEMENTED_METRIC_PROVIDERS


class Coverage(StrEnum):
    SUPPORTED = "supported"
    REJECTED = "rejected"
    IGNORED = "accepted without effect (Warning Event)"
    NOT_IN_ISTIO_MODE = "accepted without effect (as in Flagger's Istio mode)"


@dataclass(frozen=True)
class Row:
    kind: str  # Canary | MetricTemplate | AlertProvider
    path: str  # dotted, ``[]`` for list items, e.g. ``spec.analysis.metrics[].name``
    coverage: Coverage
    test: str  # ``tests/x.py::test_y`` showing the effect (supported) or the message (rejected); may be ""
    note: str = ""  # details (supported), the message (rejected), the reason (accepted without effect)
    when: str = ""  # the values this row is about, when a field's values differ (``DaemonSet``)
    subtree: bool = False  # the row covers every field below ``path``


S, R, IGN, N = Coverage.SUPPORTED, Coverage.REJECTED, Coverage.IGNORED, Coverage.NOT_IN_ISTIO_MODE
C, M, A = "Canary", "MetricTemplate", "AlertProvider"
PARSE = "tests/model/test_parse.py::test_tutorial_v1alpha3"
BAD = "tests/model/test_parse.py::test_invalid_specs_say_what_is_wrong"
DECIDE = "tests/engine/test_decide.py::"
BUILD = "tests/actuators/test_builders.py::"
EFFECTS = "tests/actuators/test_field_effects.py::"
TEMPLATES = "tests/analysis/test_templates.py::"
DELIVERY = "tests/notify/test_delivery.py::"
VS_OPTIONS = BUILD + "test_vs_http_options_copied"
SVC_OPTIONS = BUILD + "test_services_custom_metadata_headless_port_options"
GATEWAY_API = "Gateway API only; Flagger's Istio mode ignores it too"
SAAS = "tests/analysis/providers/test_saas.py::"
VERDICTS = "tests/engine/test_verdicts.py::"
VERDICT_BAD = "tests/model/test_verdict_options.py::test_invalid_verdict_options_name_the_field"
GCP = "tests/analysis/providers/test_stackdriver.py::"
STORES = "tests/analysis/providers/test_store_checks.py::"
SAAS_KEYS = ("tests/analysis/providers/test_secret_keys.py::"
             "test_missing_provider_secret_keys_are_refused_up_front")
_SAAS_TYPES = (
    ("datadog", "Datadog `/api/v1/query`, keys `datadog_api_key`, `datadog_application_key`",
     "test_datadog_request_and_first_point"),
    ("newrelic", "New Relic Insights NRQL query, keys `newrelic_account_id`, `newrelic_query_key`",
     "test_newrelic_request_and_single_result"),
    ("dynatrace", "Dynatrace `/api/v2/metrics/query`, key `dynatrace_token`, `address` required",
     "test_dynatrace_request_and_last_series"),
    ("cloudwatch", "CloudWatch `GetMetricData` (SigV4), the AWS credentials chain, `region`",
     "test_cloudwatch_signed_get_metric_data"),
    ("stackdriver", "Cloud Monitoring MQL `timeSeries:query`, keys `project`, `serviceAccountKey` (or "
     "Google's default credentials)", "test_service_account_key_and_first_point"),
)


def _verdict_rows(item: str) -> list[Row]:
    """canaryd's verdict options of a metric or rollout webhook (docs/verdicts.md)."""
    note = {"consecutiveErrorLimit": "canaryd: default 1 (every error counts, as Flagger)",
            "nodata": "canaryd: fail (default, as Flagger) or ignore",
            "dryRun": "canaryd: measured and recorded, never counts",
            "initialDelay": "canaryd: not counted during the first D of a run"}
    tests = {"consecutiveErrorLimit": "test_error_streaks_survive_a_restart",
             "nodata": "test_step_algebra", "dryRun": "test_dry_run_failing_every_step_still_promotes",
             "initialDelay": "test_initial_delay_does_not_count_early_failures"}
    return [Row(C, f"{item}.{f}", S, VERDICTS + tests[f], note[f]) for f in note]


def _judge_rows(a: str) -> list[Row]:
    """canaryd's statistical judge (docs/judge.md, "Using the judge")."""
    j = f"{a}.judge"
    parse, check = "tests/model/test_parse_judge.py::", "tests/analysis/test_judge_check.py::"
    mapped = parse + "test_a_listed_metric_overrides_the_preset_of_its_name_and_maps_its_settings"
    bad = parse + "test_bad_settings_name_their_field"
    return [
        Row(C, j, S, check + "test_a_shifted_canary_is_high_and_fails_with_the_report",
            "canaryd: canary against primary by range queries, Kayenta's classification and scoring; "
            "the report in status.checks[].judge"),
        Row(C, f"{j}.preset", S, parse + "test_the_istio_preset_in_two_lines",
            "canaryd: istio = request success rate, latency p50 and p99"),
        Row(C, f"{j}.name", S, mapped, "canaryd: the check's name (default judge)"),
        Row(C, f"{j}.metrics[]", S, mapped, "canaryd: name, preset or query (per side: {{ target }}), "
            "direction, tolerance, weight, critical, group, nodata, dryRun, interval, templateVariables",
            subtree=True),
        Row(C, f"{j}.metrics[].tolerance", R, bad,
            "{field}.tolerance {value} is out of range: must be at least 0 and below 1",
            when="below 0, or 1 or more for decrease/either"),
        Row(C, f"{j}.step", S, check + "test_a_shifted_canary_is_high_and_fails_with_the_report",
            "canaryd: range query step, default 1m"),
        Row(C, f"{j}.step", R, bad,
            "{field}: the query's step {step} is shorter than its rate window {window}: samples "
            "would overlap",
            when="shorter than a range window of a query"),
        Row(C, f"{j}.lookback", S, check + "test_the_range_never_starts_before_the_run",
            "canaryd: the judged window, default minSamples × step; never before the run's start"),
        Row(C, f"{j}.minSamples", S, check + "test_too_few_samples_is_nodata_with_the_counts",
            "canaryd: default 20; fewer points on a side: nodata with the counts"),
        Row(C, f"{j}.confidence", S, mapped, "canaryd: default 0.98"),
        Row(C, f"{j}.confidence", R, bad, "{field}.confidence {value} is out of range",
            when="not strictly between 0 and 1"),
        Row(C, f"{j}.pass", S, check + "test_marginal_score_is_inconclusive", "canaryd: default 95"),
        Row(C, f"{j}.marginal", S, check + "test_marginal_score_is_inconclusive",
            "canaryd: default 75; between marginal and pass: inconclusive"),
        *_verdict_rows(j),
    ]


def _analysis(base: str) -> list[Row]:
    a = f"spec.{base}"
    return [
        Row(C, f"{a}.interval", S, "tests/model/test_parse.py::test_interval_is_honoured_down_to_one_second",
            "1s to 24h (difference 46)"),
        Row(C, f"{a}.threshold", S, DECIDE + "test_failed_checks_halt_then_roll_back_at_threshold"),
        Row(C, f"{a}.maxWeight", S, DECIDE + "test_weight_sequence"),
        Row(C, f"{a}.stepWeight", S, DECIDE + "test_weight_sequence"),
        Row(C, f"{a}.stepWeights[]", S, "tests/model/test_parse.py::test_step_weights_set_max_weight"),
        Row(C, f"{a}.stepWeightPromotion", S, DECIDE + "test_step_weight_promotion_phases"),
        Row(C, f"{a}.iterations", S, DECIDE + "test_blue_green_phases"),
        Row(C, f"{a}.mirror", S, DECIDE + "test_mirror_first_step"),
        Row(C, f"{a}.mirrorWeight", S, BUILD + "test_vs_mirror"),
        Row(C, f"{a}.match[]", S, DECIDE + "test_ab_routes_matched_traffic_from_the_first_iteration",
            "Istio HTTPMatchRequests, copied", subtree=True),
        Row(C, f"{a}.primaryReadyThreshold", S, "tests/engine/test_field_effects.py::"
            "test_ready_threshold_zero_drops_only_the_available_replicas_wait",
            "0 means: do not wait for available replicas (the updated/old-replica waits stay)"),
        Row(C, f"{a}.canaryReadyThreshold", S, "tests/engine/test_field_effects.py::"
            "test_ready_threshold_zero_drops_only_the_available_replicas_wait", "as primaryReadyThreshold"),
        Row(C, f"{a}.sessionAffinity", S, "tests/actuators/test_affinity.py::test_set_cookie_attributes",
            "cookieName, primaryCookieName, maxAge, domain, httpOnly, partitioned, path, sameSite, secure",
            subtree=True),
        Row(C, f"{a}.metrics[].name", S, "tests/analysis/test_prometheus.py::"
            "test_results_in_list_order_and_unsupported_metrics", "builtins by name"),
        Row(C, f"{a}.metrics[].interval", S, "tests/analysis/test_queries.py::"
            "test_query_uses_target_namespace_and_interval"),
        Row(C, f"{a}.metrics[].threshold", S, "tests/analysis/test_thresholds.py::test_success_rate"),
        Row(C, f"{a}.metrics[].thresholdRange", S, "tests/analysis/test_thresholds.py::test_custom",
            subtree=True),
        Row(C, f"{a}.metrics[].query", S, "tests/model/test_parse.py::"
            "test_custom_metric_with_query_or_template"),
        Row(C, f"{a}.metrics[].templateRef", S, TEMPLATES + "test_template_renders_and_compares",
            subtree=True),
        Row(C, f"{a}.metrics[].templateVariables", S, TEMPLATES + "test_template_renders_and_compares"),
        *_verdict_rows(f"{a}.metrics[]"),
        Row(C, f"{a}.metrics[].inconclusiveRange", S, "tests/analysis/test_inconclusive_range.py::"
            "test_inconclusive_range_table", "canaryd: a value within it is inconclusive, the run waits for "
            "a person (docs/verdicts.md); MetricTemplate and query metrics", subtree=True),
        Row(C, f"{a}.metrics[].inconclusiveRange", R, "tests/model/test_verdict_options.py::"
            "test_inconclusive_range_refused_on_builtins",
            "{field}.inconclusiveRange is set on the builtin check {name}; …", when="on a builtin check"),
        Row(C, f"{a}.webhooks[].name", S, DECIDE + "test_rollback_webhook"),
        Row(C, f"{a}.webhooks[].type", S, DECIDE + "test_gates_wait_without_deadline", "every Flagger type"),
        Row(C, f"{a}.webhooks[].url", S, "tests/analysis/test_webhook_urls.py::test_url_forms"),
        Row(C, f"{a}.webhooks[].timeout", S, "tests/analysis/test_limits.py::test_webhook_bounds_accepted",
            "at most 10m (difference 44)"),
        Row(C, f"{a}.webhooks[].retries", S, "tests/analysis/test_limits.py::test_webhook_bounds_accepted",
            "at most 10 (difference 44)"),
        Row(C, f"{a}.webhooks[].disableTLS", S, "e2e/test_surface_webhooks.py::"
            "test_disable_tls_skips_certificate_verification_of_a_webhook"),
        Row(C, f"{a}.webhooks[].muteAlert", S, "e2e/test_surface_webhooks.py::"
            "test_mute_alert_silences_only_the_muted_gate"),
        Row(C, f"{a}.webhooks[].metadata", S, "e2e/test_flagger_suite.py::"
            "test_canary_with_metric_template_and_load_test", "load tester task types `cmd`, `bash`"),
        Row(C, f"{a}.webhooks[].metadata", R, BAD,
            "webhook {name}: load tester task type {type} is not supported yet; supported: cmd, bash",
            when="`type` helm, helmv3, kubectl, concord, ngrinder"),
        *_verdict_rows(f"{a}.webhooks[]"),
        *_judge_rows(a),
        Row(C, f"{a}.inconclusiveTimeout", S, VERDICTS + "test_inconclusive_timeout_rolls_back",
            "canaryd: default progressDeadlineSeconds, then roll back (docs/verdicts.md)"),
        Row(C, f"{a}.alerts[].name", S, "tests/notify/test_payloads_rules.py::test_alert_fields"),
        Row(C, f"{a}.alerts[].severity", S, "tests/notify/test_payloads_rules.py::test_severity_filter",
            "empty means info (difference 21)"),
        Row(C, f"{a}.alerts[].providerRef", S,
            DELIVERY + "test_providers_with_secret_ref_and_severity_filter", subtree=True),
    ]


ROWS: tuple[Row, ...] = (
    Row(C, "apiVersion", S, PARSE, "flagger.app/v1beta1 and the 2019 flagger.app/v1alpha3"),
    Row(C, "kind", S, PARSE),
    Row(C, "metadata", S, PARSE),
    Row(C, "spec.provider", S, PARSE, when="`istio` or unset"),
    Row(C, "spec.provider", R, BAD, "spec.provider {provider} is not supported; supported: istio (or leave "
        "it unset)", when="any other mesh or ingress"),
    Row(C, "spec.metricsServer", S,
        "tests/analysis/test_prometheus.py::test_canary_metrics_server_overrides_global",
        "builtin checks and inline queries; never a MetricTemplate's (difference 45)"),
    Row(C, "spec.targetRef.apiVersion", N, "", "Deployments are read through apps/v1, as Flagger does"),
    Row(C, "spec.targetRef.kind", S, PARSE, when="`Deployment`"),
    Row(C, "spec.targetRef.kind", R, BAD, "DaemonSet targets are not supported yet; supported kinds: "
        "Deployment", when="`DaemonSet`"),
    Row(C, "spec.targetRef.kind", R, BAD, "spec.targetRef.kind Service is not supported; supported kinds: "
        "Deployment", when="`Service`"),
    Row(C, "spec.targetRef.name", S, PARSE),
    Row(C, "spec.autoscalerRef.apiVersion", S, PARSE, "autoscaling/v2; v2beta1/v2beta2 read as v2"),
    Row(C, "spec.autoscalerRef.kind", S, BUILD + "test_primary_hpa_behavior_and_promotion_metadata",
        when="`HorizontalPodAutoscaler`"),
    Row(C, "spec.autoscalerRef.kind", R, BAD, "spec.autoscalerRef kind ScaledObject (KEDA) is not supported "
        "yet; supported: HorizontalPodAutoscaler", when="`ScaledObject`"),
    Row(C, "spec.autoscalerRef.name", S, BUILD + "test_primary_hpa_behavior_and_promotion_metadata"),
    Row(C, "spec.autoscalerRef.primaryScalerQueries", N, "", "KEDA ScaledObject only (refused above); "
        "Flagger ignores it for an HPA"),
    Row(C, "spec.autoscalerRef.primaryScalerReplicas", S,
        EFFECTS + "test_primary_hpa_takes_min_max_from_primary_scaler_replicas",
        "the primary HPA's minReplicas/maxReplicas", subtree=True),
    Row(C, "spec.ingressRef", N, "", "ingress providers only (NGINX, Contour…)", subtree=True),
    Row(C, "spec.routeRef", N, "", "Gloo / Gateway API route providers only", subtree=True),
    Row(C, "spec.upstreamRef", N, "", "Gloo only", subtree=True),
    Row(C, "spec.service.name", S, SVC_OPTIONS),
    Row(C, "spec.service.port", S, SVC_OPTIONS),
    Row(C, "spec.service.portName", S, SVC_OPTIONS),
    Row(C, "spec.service.targetPort", S, SVC_OPTIONS),
    Row(C, "spec.service.appProtocol", S, SVC_OPTIONS),
    Row(C, "spec.service.trafficDistribution", S, EFFECTS + "test_services_carry_traffic_distribution",
        "copied onto the three generated Services (an API server that does not serve the field drops it)"),
    Row(C, "spec.service.portDiscovery", S, BUILD + "test_port_discovery"),
    Row(C, "spec.service.headless", S, SVC_OPTIONS),
    Row(C, "spec.service.timeout", S, VS_OPTIONS),
    Row(C, "spec.service.backendTimeout", N, "", GATEWAY_API),
    Row(C, "spec.service.gatewayRefs[]", N, "", GATEWAY_API, subtree=True),
    Row(C, "spec.service.mirror[]", N, "", GATEWAY_API + " (Istio mirroring: analysis.mirror)", subtree=True),
    Row(C, "spec.service.gateways[]", S, BUILD + "test_vs_hosts_and_gateways"),
    Row(C, "spec.service.hosts[]", S, BUILD + "test_vs_hosts_and_gateways"),
    Row(C, "spec.service.delegation", S, BUILD + "test_vs_delegation"),
    Row(C, "spec.service.trafficPolicy", S, BUILD + "test_destination_rules",
        "copied into both DestinationRules", subtree=True),
    Row(C, "spec.service.match[]", S, VS_OPTIONS, "copied into the VirtualService", subtree=True),
    Row(C, "spec.service.rewrite", S, VS_OPTIONS, "`uri` and `authority` copied; `type` is Gateway API "
        "only and dropped, as Flagger does", subtree=True),
    Row(C, "spec.service.retries", S, VS_OPTIONS, "copied into the VirtualService", subtree=True),
    Row(C, "spec.service.headers", S, VS_OPTIONS, "copied into the VirtualService", subtree=True),
    Row(C, "spec.service.corsPolicy", S, VS_OPTIONS, "copied into the VirtualService", subtree=True),
    Row(C, "spec.service.meshName", N, "", "App Mesh only"),
    Row(C, "spec.service.backends[]", N, "", "App Mesh only"),
    Row(C, "spec.service.apex", S, BUILD + "test_vs_apex_metadata", "labels and annotations", subtree=True),
    Row(C, "spec.service.primary", S, SVC_OPTIONS, "labels and annotations", subtree=True),
    Row(C, "spec.service.canary", S, SVC_OPTIONS, "labels and annotations", subtree=True),
    Row(C, "spec.service.unmanagedMetadata", S, EFFECTS + "test_unmanaged_keys_are_never_changed_or_removed",
        "the listed label/annotation keys of generated Services are never added, changed or removed",
        subtree=True),
    Row(C, "spec.analysis", S, "tests/engine/test_field_effects.py::"
        "test_canary_without_analysis_promotes_as_skip_analysis",
        "absent: the Canary runs as skip-analysis, as in Flagger", when="absent"),
    *_analysis("analysis"),
    Row(C, "spec.canaryAnalysis", S, PARSE, "the 2019 name of `analysis`: every field as there",
        subtree=True),
    Row(C, "spec.progressDeadlineSeconds", S, DECIDE + "test_canary_never_ready_rolls_back_at_the_progress_"
        "deadline", "at most 86400"),
    Row(C, "spec.skipAnalysis", S, DECIDE + "test_skip_analysis"),
    Row(C, "spec.revertOnDeletion", S,
        "e2e/test_revert_takeover.py::test_revert_on_deletion_restores_the_target"),
    Row(C, "spec.suspend", S, DECIDE + "test_suspend_does_nothing_but_say_so_once"),
    Row(C, "status", S, "tests/engine/test_revision_status_readiness.py::test_round_trip_and_field_names",
        "written by canaryd", subtree=True),
    Row(M, "apiVersion", S, "e2e/test_crds.py::test_metric_template_and_alert_provider"),
    Row(M, "kind", S, "e2e/test_crds.py::test_metric_template_and_alert_provider"),
    Row(M, "metadata", S, TEMPLATES + "test_template_renders_and_compares"),
    Row(M, "spec.provider.type", S, "tests/model/test_field_effects.py::"
        "test_unknown_template_provider_types_are_read_as_prometheus",
        "an unknown type is read as `prometheus`, as Flagger does", when="`prometheus`, unset or unknown"),
    *([Row(M, "spec.provider.type", R, "tests/engine/test_field_effects.py::"
           "test_unsupported_template_provider_is_refused_before_a_run",
           "metric {metric}: MetricTemplate {namespace}/{name} has provider {type}, which canaryd does not "
           "support yet; supported: {supported}",
           when=", ".join(UNIMPLEMENTED_METRIC_PROVIDERS))] if UNIMPLEMENTED_METRIC_PROVIDERS else []),
    *[Row(M, "spec.provider.type", S, (GCP if kind == "stackdriver" else SAAS) + test,
          f"{what} (docs/providers.md)", when=f"`{kind}`") for kind, what, test in _SAAS_TYPES],
    Row(M, "spec.provider.type", S, "e2e/test_provider_splunk.py::test_splunk_template_drives_the_run",
        "Splunk Observability SignalFlow over a WebSocket (`<address>` rewritten to `wss://stream…`), key "
        "`sf_token_key`, `address` required, the last data point; a loopback SignalFlow server on the bed "
        "(docs/providers.md)", when="`splunk`"),
    Row(M, "spec.provider.type", S, "e2e/test_keptn.py::test_keptn_templates_drive_the_run",
        "KeptnMetric `status.value` (`keptnmetric/…`), or an Analysis created and waited for: 1 passed, "
        "0 failed (`analysis/…`), through canaryd's API-server client and RBAC (docs/providers.md)",
        when="`keptn`"),
    Row(M, "spec.provider.type", S, "e2e/test_externalmetrics.py::"
        "test_external_metrics_through_an_api_service",
        "`external.metrics.k8s.io/v1beta1`, the first item's quantity; the API server (an APIService on "
        "the bed) through canaryd's client, or `address` (docs/providers.md)", when="`externalmetrics`"),
    Row(M, "spec.provider.type", S, "e2e/test_provider_influxdb.py::test_influxdb_template_drives_the_run",
        "Flux to `/api/v2/query`, the first record's `double` `_value`; a real InfluxDB 1.8 on the bed "
        "(docs/providers.md)", when="`influxdb`"),
    Row(M, "spec.provider.type", S, "e2e/test_provider_graphite.py::test_graphite_template_drives_the_run",
        "`/render?…&format=json`, the last non-null datapoint; real carbon + graphite-web on the bed "
        "(docs/providers.md)", when="`graphite`"),
    Row(M, "spec.provider.secretRef.name", S, STORES + "test_secret_keys_up_front",
        "optional; with one: `token` and `org` (influxdb), `username` and `password` (graphite)",
        when="influxdb, graphite"),
    Row(M, "spec.provider.secretRef.name", S, SAAS + "test_datadog_request_and_first_point",
        "the provider's keys (docs/providers.md); CloudWatch has none: the AWS credentials chain",
        when="datadog, newrelic, dynatrace, stackdriver, splunk"),
    Row(M, "spec.provider.secretRef.name", R, SAAS_KEYS,
        "metric {metric}: MetricTemplate {namespace}/{name} (provider {type}): secret {secret} does not "
        "contain {keys}", when="datadog, newrelic, dynatrace, stackdriver, splunk: a required key missing"),
    Row(M, "spec.provider.address", S, TEMPLATES + "test_template_secret_and_headers",
        "unset: canaryd's `--metrics-server` (difference 45)"),
    Row(M, "spec.provider.address", S, SAAS + "test_a_hung_check_names_the_provider_and_its_default_host",
        "unset: the provider's default host (Datadog, New Relic, Cloud Monitoring); required (Dynatrace, "
        "Splunk); "
        "not used (CloudWatch: `AWS_ENDPOINT_URL_CLOUDWATCH` of canaryd's environment)",
        when="datadog, newrelic, dynatrace, cloudwatch, stackdriver, splunk"),
    Row(M, "spec.provider.address", S, "tests/analysis/providers/test_kube_providers.py::"
        "test_external_metrics_at_an_address",
        "overrides the API server; the Secret's `token` is sent there, canaryd's own credentials never",
        when="externalmetrics"),
    Row(M, "spec.provider.secretRef.name", S, "tests/analysis/providers/test_kube_providers.py::"
        "test_external_metrics_at_an_address", "optional; key `token`, sent to `address` only",
        when="externalmetrics"),
    Row(M, "spec.provider.headers", S, TEMPLATES + "test_template_secret_and_headers"),
    Row(M, "spec.provider.secretRef.name", S, TEMPLATES + "test_template_secret_and_headers",
        "token, or username and password"),
    Row(M, "spec.provider.region", S, SAAS + "test_cloudwatch_signed_get_metric_data",
        "CloudWatch only; required (`region not specified`)"),
    Row(M, "spec.provider.insecureSkipVerify", S, "e2e/test_field_effects.py::"
        "test_insecure_skip_verify_of_a_metric_template"),
    Row(M, "spec.query", S, TEMPLATES + "test_template_renders_and_compares"),
    Row(M, "status", N, "", "neither Flagger nor canaryd writes it", subtree=True),
    Row(A, "apiVersion", S, "e2e/test_crds.py::test_metric_template_and_alert_provider"),
    Row(A, "kind", S, "e2e/test_crds.py::test_metric_template_and_alert_provider"),
    Row(A, "metadata", S, DELIVERY + "test_providers_with_secret_ref_and_severity_filter"),
    Row(A, "spec.type", S, DELIVERY + "test_providers_with_secret_ref_and_severity_filter",
        when="slack, msteams, discord, rocket, gchat"),
    Row(A, "spec.type", R, DELIVERY + "test_broken_providers_are_logged_not_raised",
        "alert {alert} not sent: AlertProvider {provider}.{namespace}: type '{type}' is not supported; "
        "supported: slack, msteams, discord, rocket, gchat",
        when="any other (logged; the alert is not sent)"),
    Row(A, "spec.channel", S, "tests/notify/test_payloads_rules.py::test_body"),
    Row(A, "spec.username", S, "tests/notify/test_payloads_rules.py::test_body"),
    Row(A, "spec.address", S, "tests/notify/test_payloads_rules.py::test_endpoint"),
    Row(A, "spec.proxy", S, DELIVERY + "test_providers_with_secret_ref_and_severity_filter"),
    Row(A, "spec.secretRef.name", S, DELIVERY + "test_providers_with_secret_ref_and_severity_filter",
        "`address`, `token`"),
    Row(A, "status", N, "", "neither Flagger nor canaryd writes it", subtree=True),
)


def rows_for(kind: str, path: str) -> list[Row]:
    """The rows covering ``path`` of ``kind``: its own, or a subtree row above it."""
    return [r for r in ROWS if r.kind == kind and (
        r.path == path or (r.subtree and (path.startswith(r.path + ".") or path.startswith(r.path + "[]"))))]


def ignored_fields(canary: dict[str, Any]) -> tuple[str, ...]:
    """The fields of the ``ignored`` rows set in this raw Canary (named in a Warning Event)."""
    return tuple(r.path for r in ROWS if r.kind == C and r.coverage is IGN and _present(canary, r.path))


def _present(node: Any, path: str) -> bool:
    head, _, rest = path.partition(".")
    items = head.endswith("[]")
    value = node.get(head.removesuffix("[]")) if isinstance(node, dict) else None
    if value is None or value == [] or value == {}:
        return False
    if not rest:
        return True
    if items:
        return isinstance(value, list) and any(_present(v, rest) for v in value)
    return _present(value, rest)


BEGIN = ("<!-- BEGIN fields: generated by "
         "`python3 -m canaryd.model.coverage --write docs/compatibility.md` -->")
END = "<!-- END fields -->"


def render() -> str:
    """The field table of the scope section of docs/compatibility.md."""
    lines = ["| resource | field | values | status | details | shown by |", "|---|---|---|---|---|---|"]
    for r in ROWS:
        field = f"`{r.path}`" + (" (and below)" if r.subtree else "")
        note = f"`{r.note}`" if r.coverage is R else r.note
        test = f"`{r.test}`" if r.test else ""
        lines.append(f"| {r.kind} | {field} | {r.when} | {r.coverage.value} | {note} | {test} |")
    return "\n".join(lines) + "\n"


def with_rendering(doc: str) -> str:
    """``doc`` with the text between the markers replaced by :func:`render`."""
    before, _, rest = doc.partition(BEGIN + "\n")
    _, _, after = rest.partition(END)
    return before + BEGIN + "\n" + render() + END + after


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--write":
        path = Path(argv[1])
        path.write_text(with_rendering(path.read_text()))
        return 0
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
