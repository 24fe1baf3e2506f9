"""Prometheus metrics of the server, served as text format on the metrics port.

Design decisions:
- One `CollectorRegistry` per server instead of the global default, so several servers in
  one process (tests, benchmarks) never clash over metric names.
- Latency histograms use buckets spread over what a CPU and a GPU produce: a few ms per
  token on a GPU, up to seconds for a first token on a 2-core laptop.
- Requests are counted by model, method and final gRPC status code once each call ends,
  so a cancelled stream counts as CANCELLED, not OK (labelled by API: `grpc` or `http`,
  whose calls carry the same status names); errors by code are the non-OK codes
  of that one counter, so an error ratio is one division.
- Names follow vLLM's (`request_success_total{finished_reason}`, `prompt_tokens_total`,
  `generation_tokens_total`, `e2e_request_latency_seconds`, ...) with the `chatforge_`
  prefix, so dashboards made for vLLM read the same way. Every per-request series is
  labelled by model; the guardrail series too (an empty model for CheckText, which names
  none).
- Request timings: TTFT from receiving the call, prefill from the engine's admission of
  the request to its first token, decode from the first to the last token, end to end
  from receiving the call to its last event.
- The engine reports each step (`observe_step`, called on its thread with a `StepStats`):
  the scheduler series are named as vLLM names them (`num_requests_running`,
  `kv_cache_usage_perc`, `prefix_cache_hits`, ...) with our prefix, labelled by the model
  whose engine it is (adapters share their base's engine).
- Process memory and CPU come from prometheus-client's process collector, registered on
  this registry (it sits on the global one by default).
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)

from backend.engine import StepStats

_GUARD_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
)  # fmt: skip
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_TOKEN_BUCKETS = (1, 4, 16, 64, 128, 256, 512, 1024, 2048, 4096)
_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
# Whole requests: a long answer on a laptop CPU takes minutes.
_REQUEST_BUCKETS = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip
_RETRIEVAL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "chatforge_requests",
            "Calls handled, by API (grpc, http), model, method and final status code.",
            ["model", "method", "code", "api"],
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
        self.generation_tokens = Counter(
            "chatforge_generation_tokens",
            "Completion tokens generated.",
            ["model"],
            registry=self.registry,
        )
        self.prompt_tokens = Counter(
            "chatforge_prompt_tokens",
            "Prompt tokens of the Chat calls that reached the model or the response cache.",
            ["model"],
            registry=self.registry,
        )
        self.request_success = Counter(
            "chatforge_request_success",
            "Chat calls that finished, by finish reason (stop, length, stop_sequence, "
            "blocked, cancelled).",
            ["model", "finished_reason"],
            registry=self.registry,
        )
        self.e2e_latency = Histogram(
            "chatforge_e2e_request_latency_seconds",
            "Time from receiving a Chat call to its last event.",
            ["model"],
            buckets=_REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.prefill_time = Histogram(
            "chatforge_request_prefill_time_seconds",
            "Time from the engine admitting a request to its first token.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decode_time = Histogram(
            "chatforge_request_decode_time_seconds",
            "Time from a request's first generated token to its last.",
            ["model"],
            buckets=_REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.retrieval_latency = Histogram(
            "chatforge_retrieval_latency_seconds",
            "Time to search a collection for a Chat call (embed, search, fuse).",
            ["model", "collection"],
            buckets=_RETRIEVAL_BUCKETS,
            registry=self.registry,
        )
        self.model_load_time = Gauge(
            "chatforge_model_load_seconds",
            "Seconds the model took to load at start-up.",
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
            "Guardrail findings, by model, stage (input, retrieval, output), category and action.",
            ["model", "stage", "category", "action"],
            registry=self.registry,
        )
        self.guard_latency = Histogram(
            "chatforge_guard_latency_seconds",
            "Time spent in guardrail checks per request and stage (output: per stream).",
            ["model", "stage"],
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
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

        # The engine's scheduler (backend/engine.py), one observation per step.
        self.requests_running = Gauge(
            "chatforge_num_requests_running",
            "Sequences in the engine's running batch.",
            ["model"],
            registry=self.registry,
        )
        self.requests_waiting = Gauge(
            "chatforge_num_requests_waiting",
            "Requests queued for admission to the running batch.",
            ["model"],
            registry=self.registry,
        )
        self.kv_cache_usage = Gauge(
            "chatforge_kv_cache_usage_perc",
            "Fraction of KV cache blocks held by live sequences (0..1).",
            ["model"],
            registry=self.registry,
        )
        self.prefix_cache_queries = Counter(
            "chatforge_prefix_cache_queries",
            "Prompt tokens looked up in the prefix cache.",
            ["model"],
            registry=self.registry,
        )
        self.prefix_cache_hits = Counter(
            "chatforge_prefix_cache_hits",
            "Prompt tokens found in the prefix cache (their KV was reused).",
            ["model"],
            registry=self.registry,
        )
        self.queue_time = Histogram(
            "chatforge_request_queue_time_seconds",
            "Time from submission to admission into the running batch.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.step_time = Histogram(
            "chatforge_engine_step_seconds",
            "Duration of one engine step (one forward pass, sampling included).",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "chatforge_batch_size",
            "Sequences in one engine step.",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.step_tokens = Histogram(
            "chatforge_step_tokens",
            "Tokens computed in one engine step (decode rows plus prefill chunks).",
            ["model"],
            buckets=_TOKEN_BUCKETS,
            registry=self.registry,
        )

    def observe_step(self, model: str, stats: StepStats) -> None:
        self.requests_running.labels(model).set(stats.running)
        self.requests_waiting.labels(model).set(stats.waiting)
        self.kv_cache_usage.labels(model).set(stats.kv_usage)
        self.prefix_cache_queries.labels(model).inc(stats.prefix_queried)
        self.prefix_cache_hits.labels(model).inc(stats.prefix_hits)
        for seconds in stats.queue_seconds:
            self.queue_time.labels(model).observe(seconds)
        self.step_time.labels(model).observe(stats.seconds)
        self.batch_size.labels(model).observe(stats.rows)
        self.step_tokens.labels(model).observe(stats.tokens)

    def serve(self, port: int, host: str = "127.0.0.1"):
        """Start the /metrics HTTP endpoint; returns (server, thread)."""
        return start_http_server(port, addr=host, registry=self.registry)
