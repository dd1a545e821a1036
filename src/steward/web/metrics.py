"""Prometheus metrics of one server process: requests, latency, predictions, violations."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["Metrics"]

# Hot-path latencies are sub-millisecond to tens of milliseconds: buckets from 0.25 ms to 2.5 s.
_BUCKETS = (0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Counters and histograms on a registry of their own (several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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

    def observe_prediction(
        self, system: str, version: int, latency_ms: float, violations: list[Any]
    ) -> None:
        self.predictions.labels(system, str(version)).inc()
        self.model_seconds.labels(system, str(version)).observe(latency_ms / 1000)
        for violation in violations:
            self.count_violation(system, violation)

    def count_violation(self, system: str, violation: Any) -> None:
        self.violations.labels(system, violation.column, violation.rule, violation.action).inc()

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        self.requests.labels(request.method, path, str(response.status_code)).inc()
        self.request_seconds.labels(request.method, path).observe(time.perf_counter() - started)
        return response
