"""Prometheus metrics (SPEC §12), one registry per app so tests and workers stay separate.

``labels()`` builds and locks on every call; the order path asks for the same few label sets
over and over, so their children are looked up once and kept (:meth:`Metrics.child`).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

_LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "gateway_decisions",
            "Order-route decisions by dialect, route class and reason",
            ("dialect", "route_class", "decision", "reason"),
            registry=self.registry,
        )
        self.conversions = Counter(
            "gateway_conversions",
            "MARKET/SL-M orders converted to LIMIT/SL",
            ("dialect",),
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "gateway_rate_limited",
            "Order requests refused by the rate limit",
            ("dialect",),
            registry=self.registry,
        )
        self.upstream_latency = Histogram(
            "gateway_upstream_latency_seconds",
            "Upstream round trip",
            ("dialect",),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.overhead = Histogram(
            "gateway_overhead_seconds",
            "Time spent in the gateway, upstream excluded",
            ("dialect",),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.internal_errors = Counter(
            "gateway_internal_errors",
            "Exceptions no handler foresaw, answered 500 by the error boundary",
            ("envelope",),
            registry=self.registry,
        )
        self.bookkeeping_failures = Counter(
            "gateway_bookkeeping_failures",
            "Store writes that failed after an order went upstream (the answer still stood)",
            ("what",),
            registry=self.registry,
        )

        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def child(self, metric: Counter | Histogram, *labels: str) -> Any:
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def render(self) -> bytes:
        return generate_latest(self.registry)
