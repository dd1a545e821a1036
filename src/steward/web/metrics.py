"""Prometheus metrics of one server process: requests, latency, predictions, violations, what its
serving runtime last read (``steward_serving_*``), and the model-health gauges read from the store
(``steward.web.health_metrics``).

The ``_created`` series prometheus_client adds to every counter and histogram (the Unix time the
series was made) are turned off: Prometheus does not use them and they double what ``/metrics``
lists. prometheus_client only offers this for the whole process, which is the server's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from steward.delivery.serving import Service
from steward.web.health_metrics import HEALTH_TTL, HealthCollector
from steward.workspace import Workspace

__all__ = ["SERVING_METRICS", "Metrics", "ServingCollector"]

# Hot-path latencies are sub-millisecond to tens of milliseconds: buckets from 0.25 ms to 2.5 s.
_BUCKETS = (0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

#: This process's view of each served system: name -> (help, label names). All are gauges.
SERVING_METRICS = {
    "steward_serving_alias_version": (
        "The model version each alias points at, as this server last read it from the store; "
        "requests switch to a new version once it is loaded.",
        ("system", "alias"),
    ),
    "steward_serving_suspended": (
        "1 while this server sees the system's automation suspended, else 0.",
        ("system",),
    ),
    "steward_serving_checked_seconds": (
        "Seconds since this server last found the system's aliases, suspension, contract and "
        "policy current in the store (a few tenths normally; growing while the store is away).",
        ("system",),
    ),
}


class ServingCollector:
    """What ``service`` last read of each system it serves, read from memory at each scrape.

    These differ between replicas only until each has seen a change (``serving_refresh_ms``),
    so comparing them across replicas shows a promotion or a suspension reaching every server.
    """

    def __init__(self, service: Service) -> None:
        self.service = service

    def describe(self) -> list[Metric]:
        return [
            GaugeMetricFamily(name, help_text) for name, (help_text, _) in SERVING_METRICS.items()
        ]

    def collect(self) -> Iterator[Metric]:
        families = {
            name: GaugeMetricFamily(name, help_text, labels=list(labels))
            for name, (help_text, labels) in SERVING_METRICS.items()
        }
        for runtime, seconds in sorted(self.service.seen(), key=lambda item: item[0].name):
            for alias, version in sorted(runtime.aliases.items()):
                families["steward_serving_alias_version"].add_metric([runtime.name, alias], version)
            suspended = float(runtime.suspension is not None)
            families["steward_serving_suspended"].add_metric([runtime.name], suspended)
            families["steward_serving_checked_seconds"].add_metric([runtime.name], seconds)
        yield from families.values()


class Metrics:
    """Counters and histograms on a registry of their own (several apps can live in one process),
    and the model-health gauges of ``workspace`` once it is given (here or through ``watch``).

    ``health_ttl`` is how many seconds one read of the store serves further scrapes.

    >>> metrics = Metrics()
    >>> metrics.predictions.labels("churn", "1").inc()
    """

    def __init__(
        self, workspace: Workspace | None = None, *, health_ttl: float = HEALTH_TTL
    ) -> None:
        disable_created_metrics()
        self.registry = CollectorRegistry()
        self.health: HealthCollector | None = None
        self._health_ttl = health_ttl
        self._watching = threading.Lock()
        self.requests = Counter(
            "steward_http_requests",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "steward_http_request_seconds",
            "HTTP request latency.",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "steward_predictions",
            "Predictions served, by model version.",
            ["system", "model_version"],
            registry=self.registry,
        )
        self.model_seconds = Histogram(
            "steward_model_seconds",
            "Model call time per record.",
            ["system", "model_version"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.violations = Counter(
            "steward_contract_violations",
            "Contract violations by column, rule and action.",
            ["system", "column", "rule", "action"],
            registry=self.registry,
        )
        self.outcomes = Counter(
            "steward_outcomes", "Outcomes received.", ["system"], registry=self.registry
        )
        self.logged = Counter(
            "steward_logged_predictions",
            "Predictions logged from elsewhere.",
            ["system"],
            registry=self.registry,
        )
        self.loop_ticks = Counter(
            "steward_loop_ticks", "Loop ticks this server ran.", registry=self.registry
        )
        self.loop_leader = Gauge(
            "steward_loop_leader",
            "1 while this server holds the loop lock and runs the loop, else 0.",
            registry=self.registry,
        )
        if workspace is not None:
            self.watch(workspace)

    def watch(self, workspace: Workspace) -> None:
        """Export ``workspace``'s model health (drift, SLOs, alerts, ...) too; once is enough."""
        with self._watching:
            if self.health is None:
                self.health = HealthCollector(workspace, ttl=self._health_ttl)
                self.registry.register(self.health)

    def watch_serving(self, service: Service) -> None:
        """Export what ``service`` last read of each system it serves (``SERVING_METRICS``)."""
        self.registry.register(ServingCollector(service))

    def observe_prediction(
        self, system: str, version: int, latency_ms: float, violations: list[Any]
    ) -> None:
        """Count one served prediction, its model time and its contract violations."""
        self.predictions.labels(system, str(version)).inc()
        self.model_seconds.labels(system, str(version)).observe(latency_ms / 1000)
        for violation in violations:
            self.count_violation(system, violation)

    def count_violation(self, system: str, violation: Any) -> None:
        """Count one contract violation by column, rule and the action taken."""
        self.violations.labels(system, violation.column, violation.rule, violation.action).inc()

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Plain ASGI middleware counting requests and timing them by route.

        Written against ASGI directly: Starlette's ``BaseHTTPMiddleware`` adds a task and a memory
        stream per request, which shows on the hot path.
        """

        async def timed(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            if self.health is None:
                self._watch_app(scope)
            started = time.perf_counter()
            status = 500

            async def send_and_note(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await app(scope, receive, send_and_note)
            finally:
                path = getattr(scope.get("route"), "path", "unmatched")
                method = scope.get("method", "")
                self.requests.labels(method, path, str(status)).inc()
                self.request_seconds.labels(method, path).observe(time.perf_counter() - started)

        return timed

    def _watch_app(self, scope: Scope) -> None:
        """Watch the workspace of the app serving this request (Starlette puts the app in the
        scope), so an app that built ``Metrics()`` without one still exports model health."""
        state = getattr(scope.get("app"), "state", None)
        workspace = getattr(state, "steward", None)
        if isinstance(workspace, Workspace):
            self.watch(workspace)
