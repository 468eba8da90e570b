"""Everything a canary task needs from the process, passed explicitly (no module-level state)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from canaryd.actuators.events import EventRecorder
from canaryd.analysis.checks import CheckRegistry
from canaryd.cache.index import CanaryIndex
from canaryd.cache.store import Store
from canaryd.kube.client import KubeClient
from canaryd.notify.notifier import Notifier
from canaryd.runtime.clock import REAL_CLOCK, Clock
from canaryd.runtime.config_data import ConfigData
from canaryd.runtime.crash import CrashPoints
from canaryd.runtime.metrics import Metrics
from canaryd.settings import Settings


@dataclass(frozen=True)
class Context:
    settings: Settings
    client: KubeClient
    store: Store
    index: CanaryIndex  # which Canaries an object concerns, kept in step with the store
    metrics: Metrics
    logger: logging.Logger
    crash: CrashPoints
    http: aiohttp.ClientSession  # Prometheus, webhooks, alerts (analysis/outbound.py)
    events: EventRecorder
    checks: CheckRegistry  # builtin, inline and MetricTemplate checks (templates read from the cache)
    notifier: Notifier  # alerts and event webhooks, sent in the background
    # leader election: False once this replica's lease may have passed to another (runtime/leader.py)
    may_act: Callable[[], bool] = lambda: True
    # where tasks, deadlines and finalizers read time (runtime/clock.py); tests pass a faster one
    clock: Clock = REAL_CLOCK
    # has this namespace's cache listed (runtime/scope.py)? A Canary's task starts only then
    scope_ready: Callable[[str], bool] = lambda _namespace: True
    # reads the data of referenced objects watched as metadata alone (runtime/config_data.py); None when
    # every kind is watched whole
    config_data: ConfigData | None = None
