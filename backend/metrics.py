"""Prometheus metrics of the server, served as text format on the metrics port.

Design decisions:
- One `CollectorRegistry` per server instead of the global default, so several servers in
  one process (tests, benchmarks) never clash over metric names.
- Latency histograms use buckets spread over what a CPU and a GPU produce: a few ms per
  token on a GPU, up to seconds for a first token on a 2-core laptop.
- Requests are counted by model, method and final gRPC status code once each call ends,
  so a cancelled stream counts as CANCELLED, not OK.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_GUARD_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
)  # fmt: skip
_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "chatforge_requests",
            "RPCs handled, by model, method and final status code.",
            ["model", "method", "code"],
            registry=self.registry,
        )
        self.time_to_first_token = Histogram(
            "chatforge_time_to_first_token_seconds",
            "Time from receiving a Chat call to sending its first text delta.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inter_token_latency = Histogram(
            "chatforge_inter_token_latency_seconds",
            "Time between consecutive generated tokens of one stream.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.generated_tokens = Counter(
            "chatforge_generated_tokens",
            "Completion tokens generated.",
            ["model"],
            registry=self.registry,
        )
        self.active_streams = Gauge(
            "chatforge_active_streams",
            "Chat streams in progress.",
            ["model"],
            registry=self.registry,
        )

        # Guardrails and the response cache (backend/guardrails, backend/response_cache.py).
        self.guardrail_verdicts = Counter(
            "chatforge_guardrail_verdicts",
            "Guardrail findings, by stage (input, retrieval, output), category and action.",
            ["stage", "category", "action"],
            registry=self.registry,
        )
        self.guard_latency = Histogram(
            "chatforge_guard_latency_seconds",
            "Time spent in guardrail checks per request and stage (output: per stream).",
            ["stage"],
            buckets=_GUARD_BUCKETS,
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "chatforge_response_cache_hits",
            "Deterministic Chat calls answered from the response cache.",
            ["model"],
            registry=self.registry,
        )
        self.cache_misses = Counter(
            "chatforge_response_cache_misses",
            "Deterministic Chat calls not found in the response cache.",
            ["model"],
            registry=self.registry,
        )

    def serve(self, port: int, host: str = "127.0.0.1"):
        """Start the /metrics HTTP endpoint; returns (server, thread)."""
        return start_http_server(port, addr=host, registry=self.registry)
