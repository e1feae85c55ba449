"""Prometheus metrics of one app (its own registry, so several apps in one process do not clash):
requests by route and status, latency, batch sizes in texts and tokens, queue depth, tokens processed,
the model thread's CPU time.

    >>> metrics = ServeMetrics()
    >>> metrics.requests.labels(route="/embed", status="200").inc()
    >>> b"stmt_requests_total" in metrics.render()[0]
    True
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["ServeMetrics"]

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_TEXT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_TOKEN_BUCKETS = (16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)


class ServeMetrics:
    """The server's counters, histograms and gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "stmt_requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "stmt_request_duration_seconds",
            "Request latency",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_texts = Histogram(
            "stmt_batch_texts", "Texts per model call", buckets=_TEXT_BUCKETS, registry=r
        )
        self.batch_tokens = Histogram(
            "stmt_batch_tokens", "Tokens per model call", buckets=_TOKEN_BUCKETS, registry=r
        )
        self.queue_depth = Gauge("stmt_queue_depth", "Texts waiting for the model", registry=r)
        self.tokens = Counter("stmt_tokens", "Tokens processed by the model", registry=r)
        self.model_cpu = Counter(
            "stmt_model_cpu_seconds",
            "CPU seconds of the thread that runs the model (a multi-threaded runtime's pool not counted)",
            registry=r,
        )
        self.rejected = Counter("stmt_rejected", "Requests refused with 429 (queue full)", registry=r)

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
