"""Metric providers other than Prometheus, one module each, and the one registry that names them.

:data:`PROVIDERS` maps a MetricTemplate's ``spec.provider.type`` to its :class:`Provider`; a check of a
template whose type is in it is run through it (:mod:`canaryd.analysis.templates`). The registry is
read-only and built here only.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from canaryd.analysis.providers.cloudwatch import CloudWatch
from canaryd.analysis.providers.datadog import Datadog
from canaryd.analysis.providers.dynatrace import Dynatrace
from canaryd.analysis.providers.externalmetrics import ExternalMetrics
from canaryd.analysis.providers.graphite import GraphiteProvider
from canaryd.analysis.providers.influxdb import InfluxDBProvider
from canaryd.analysis.providers.keptn import KeptnProvider
from canaryd.analysis.providers.newrelic import NewRelic
from canaryd.analysis.providers.protocol import Provider, ProviderError, ProviderNoValues, ProviderSettings
from canaryd.analysis.providers.splunk import Splunk
from canaryd.analysis.providers.stackdriver import Stackdriver

PROVIDERS: Mapping[str, Provider] = MappingProxyType({
    "graphite": GraphiteProvider(),
    "influxdb": InfluxDBProvider(),
    "datadog": Datadog(),
    "newrelic": NewRelic(),
    "dynatrace": Dynatrace(),
    "cloudwatch": CloudWatch(),
    "stackdriver": Stackdriver(),
    "keptn": KeptnProvider(),
    "externalmetrics": ExternalMetrics(),
    "splunk": Splunk(),
})

__all__ = ["PROVIDERS", "Provider", "ProviderError", "ProviderNoValues", "ProviderSettings"]
