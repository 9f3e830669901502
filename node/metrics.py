"""Prometheus metrics of one node, named ``kpnet_<subsystem>_<name>_<unit>``.

Each app owns its registry (so several nodes can live in one test process). Counts
that live in the database (records, audit entries) are read at scrape time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]


class DatabaseCounts(Collector):
    """Gauges computed from the database when Prometheus scrapes."""

    def __init__(self, read_counts: Callable[[], dict[str, Any]]) -> None:
        self._read_counts = read_counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        counts = self._read_counts()
        records = GaugeMetricFamily(
            "kpnet_records_total_count", "Live records by kind", labels=["kind"]
        )
        for kind, value in sorted(counts.get("records", {}).items()):
            records.add_metric([kind], value)
        yield records
        yield GaugeMetricFamily(
            "kpnet_audit_entries_count", "Entries in the audit log", value=counts.get("audit", 0)
        )
        depth = GaugeMetricFamily(
            "kpnet_outbox_pending_count", "Messages waiting for delivery, by peer", labels=["peer"]
        )
        oldest = GaugeMetricFamily(
            "kpnet_outbox_oldest_pending_age_seconds",
            "Age of the oldest message waiting for delivery, by peer",
            labels=["peer"],
        )
        up = GaugeMetricFamily(
            "kpnet_peer_up",
            "1 if the last delivery attempt to the (active) peer succeeded",
            labels=["peer"],
        )
        clock = GaugeMetricFamily(
            "kpnet_peer_clock_offset_seconds",
            "How far the peer's clock is ahead of this node's (negative: behind), as last "
            "measured from its answers",
            labels=["peer"],
        )
        for peer, info in sorted(counts.get("peers", {}).items()):
            depth.add_metric([peer], info["pending"])
            oldest.add_metric([peer], info["oldest_age"])
            if info["up"] is not None:
                up.add_metric([peer], info["up"])
            if info.get("clock_offset") is not None:
                clock.add_metric([peer], info["clock_offset"])
        yield depth
        yield oldest
        yield up
        yield clock
        quota = GaugeMetricFamily(
            "kpnet_peer_quota_used_ratio",
            "Share of the peer's daily quota (UTC day) used, by kind: kyc_query, "
            "disclosure_request; 1 means further ones are refused with quota_exceeded",
            labels=["peer", "kind"],
        )
        for peer, ratios in sorted(counts.get("quotas", {}).items()):
            for kind, ratio in sorted(ratios.items()):
                quota.add_metric([peer, kind], ratio)
        yield quota


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "kpnet_http_requests_total",
            "HTTP requests by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "kpnet_http_request_duration_seconds",
            "HTTP request latency by method and route",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

        self.messages_received = Counter(
            "kpnet_federation_messages_received_total",
            "Messages accepted from peers",
            ["peer", "type"],
            registry=self.registry,
        )
        self.messages_duplicate = Counter(
            "kpnet_federation_messages_duplicate_total",
            "Re-delivered messages acknowledged again without processing",
            ["peer", "type"],
            registry=self.registry,
        )
        self.messages_rejected = Counter(
            "kpnet_federation_messages_rejected_total",
            "Messages refused, by claimed sender ('?' if not a peer), type and error code",
            ["peer", "type", "code"],
            registry=self.registry,
        )
        self.refused_unauthenticated = Counter(
            "kpnet_federation_refused_unauthenticated_total",
            "Requests and envelopes refused before a sender's signature verified (not "
            "audited one by one), by reason",
            ["reason"],
            registry=self.registry,
        )
        self._unaudited = Tally[str]()
        self._unaudited_lock = threading.Lock()
        self.messages_sent = Counter(
            "kpnet_federation_messages_sent_total",
            "Messages delivered to peers (receipt verified)",
            ["peer", "type"],
            registry=self.registry,
        )
        self.messages_failed = Counter(
            "kpnet_federation_messages_failed_total",
            "Messages a peer refused for good, by error code",
            ["peer", "type", "code"],
            registry=self.registry,
        )
        self.delivery_attempts_failed = Counter(
            "kpnet_federation_delivery_failures_total",
            "Delivery attempts that failed and will be retried",
            ["peer", "reason"],
            registry=self.registry,
        )
        self.delivery_latency = Histogram(
            "kpnet_federation_delivery_latency_seconds",
            "Time from queuing a message to its verified receipt",
            ["peer"],
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400),
        )

    def refuse_unauthenticated(self, reason: str, count: int = 1) -> None:
        """Count refusals made before the sender was authenticated (an error code, or
        ``rate_limited``), for the metric and for the next aggregated audit entry."""
        self.refused_unauthenticated.labels(reason).inc(count)
        with self._unaudited_lock:
            self._unaudited[reason] += count

    def take_unaudited_refusals(self) -> dict[str, int]:
        """The refusals counted since the last call, by reason (and forget them)."""
        with self._unaudited_lock:
            taken, self._unaudited = dict(self._unaudited), Tally[str]()
        return taken

    def watch_database(self, read_counts: Callable[[], dict[str, Any]]) -> None:
        self.registry.register(DatabaseCounts(read_counts))


def route_template(scope: Scope) -> str:
    """The matched route as a template (``/api/v1/subjects/{ref}``), so labels stay few."""
    own = getattr(scope.get("route"), "path_format", None)
    if not isinstance(own, str) or not own:
        return "unmatched"
    # A route of an included router knows only its own part of the path; the part in
    # front of it (the including routers' prefixes, which hold no parameters) is read
    # off the request. Parameter values are never put into the label.
    prefix = scope.get("path", "").split("/")[: -own.count("/")]
    return "/".join(prefix) + own


class HttpMetricsMiddleware:
    """Pure ASGI middleware: counts and times requests by route template."""

    def __init__(self, app: ASGIApp, metrics: NodeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            template = route_template(scope)
            method = scope.get("method", "")
            self.metrics.http_requests.labels(method, template, str(status)).inc()
            self.metrics.http_latency.labels(method, template).observe(time.perf_counter() - start)
