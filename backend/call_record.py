"""What one RPC leaves behind: its log line, its metrics and its spans, written in one place.

Design decisions:
- A `CallRecord` is opened when an RPC arrives and filled in as the pipeline runs
  (validation, guardrails, retrieval, the engine, the output filter); `close` runs once
  however the call ends (finished, blocked, refused, cancelled, failed) and writes the
  finished-request log line, the per-request metrics and the GenAI attributes of the RPC
  span together, so the three always agree.
- The request id is the client's (the request's `request_id`, else its `x-request-id`
  metadata) or a new one. The service returns it in `Started` and in the response
  metadata, appends it to error messages, and `log_context` puts it on every log line
  written while the call runs; the trace id comes from the current span (the gRPC
  instrumentation's server span, or with tracing off the caller's `traceparent`).
- Timings: time to first token from receiving the call; the queue wait is the engine's
  own (`Generation.queued_seconds`, submit to admission); prefill from admission to the
  first token, decode from the first to the last token, both seen by the service. The
  engine stages become spans with those start and end times, children of the RPC span;
  stages that run inline (guardrails, retrieval) are spans around them.
- Message content goes into the log line only with `--log-content`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from opentelemetry import trace

from backend.engine import Generation
from backend.metrics import ServerMetrics
from chat.v1 import chat_pb2
from telemetry import genai
from telemetry.logs import content_logging
from telemetry.tracing import tracer

log = logging.getLogger("chatforge.requests")
_tracer = tracer("chatforge.server")
REQUEST_ID_HEADER = "x-request-id"


def request_id_of(metadata, requested: str = "") -> str:
    """The caller's request id (the request field first, then the metadata) or a new one."""
    if requested:
        return requested
    sent = next((v for k, v in metadata if k == REQUEST_ID_HEADER and isinstance(v, str)), "")
    return sent or uuid.uuid4().hex


@dataclass
class CallRecord:
    method: str
    request_id: str
    peer: str
    metrics: ServerMetrics
    request: chat_pb2.ChatRequest | None = None  # Chat's, for the GenAI attributes
    model: str = ""
    api: str = "grpc"  # the API the call came through: grpc or http
    adapter: str | None = None
    code: str = "OK"
    error: str = ""
    prompt_tokens: int = 0
    finished: chat_pb2.Finished | None = None
    guardrails: list[str] = field(default_factory=list)
    cache_hit: bool | None = None
    rag_collection: str | None = None
    rag_k: int | None = None
    messages: list[dict[str, str]] | None = None  # logged with --log-content only
    answer: list[str] = field(default_factory=list)
    received: float = field(default_factory=time.perf_counter)
    generation: Generation | None = None
    submitted: float | None = None  # when the generation was handed to the engine
    first_token: float | None = None
    last_token: float | None = None
    output_guard_seconds: float = 0.0
    span: trace.Span = field(default_factory=trace.get_current_span)
    _wall_at_received: int = field(default_factory=time.time_ns)

    # Filled in by the pipeline ----------------------------------------------------------

    @contextmanager
    def stage(self, name: str, **attributes) -> Iterator[trace.Span]:
        """A child span around an inline stage (input guard, retrieval, ...)."""
        with _tracer.start_as_current_span(name, attributes=attributes or None) as span:
            yield span

    def verdicts(self, verdicts) -> None:
        self.guardrails += [f"{v.stage}:{v.category or 'none'}:{v.action}" for v in verdicts]

    def token(self, at: float) -> None:
        if self.first_token is None:
            self.first_token = at
        self.last_token = at

    # The end ---------------------------------------------------------------------------

    def fail(self, code: str, message: str) -> str:
        """Record a refusal or failure; the message the caller gets, naming the request
        (once: an engine failure names it already)."""
        self.code, self.error = code, message
        return (
            message if self.request_id in message else f"{message} (request id {self.request_id})"
        )

    def close(self) -> None:
        ended = time.perf_counter()
        # A refused call may name no model (or one that does not exist): "unknown".
        label = self.model if self.code == "OK" else self.model or "unknown"
        self.metrics.requests.labels(label, self.method, self.code, self.api).inc()
        if self.request is not None:
            self._chat_metrics(label, ended)
            self._engine_spans(ended)
            self.span.set_attributes(genai.request_attributes(self.request, self.model))
            self.span.set_attributes(
                genai.response_attributes(self.request_id, self.model, self.finished)
            )
        fields = self._fields(ended)
        level = logging.ERROR if self.code in ("INTERNAL", "UNKNOWN") else logging.INFO
        log.log(level, "%s finished: %s", self.method, self.code, extra=fields)

    def _chat_metrics(self, label: str, ended: float) -> None:
        m = self.metrics
        m.e2e_latency.labels(label).observe(ended - self.received)
        if self.finished is not None:
            usage = self.finished.usage
            m.prompt_tokens.labels(label).inc(usage.prompt_tokens)
            reason = genai.finish_reason(self.finished.finish_reason)
            m.request_success.labels(label, reason).inc()
        admitted = self._admitted()
        if admitted is not None and self.first_token is not None:
            m.prefill_time.labels(label).observe(self.first_token - admitted)
            m.decode_time.labels(label).observe(self.last_token - self.first_token)

    def _admitted(self) -> float | None:
        """When the engine admitted the generation (None: not submitted, or never admitted)."""
        if self.generation is None or self.generation.queued_seconds is None:
            return None
        return self.submitted + self.generation.queued_seconds

    def _ns(self, at: float) -> int:
        return self._wall_at_received + int((at - self.received) * 1e9)

    def _engine_spans(self, ended: float) -> None:
        """The engine's stages as spans with the times they happened."""
        if self.generation is None:
            return
        parent = trace.set_span_in_context(self.span)
        admitted = self._admitted()
        queue = _tracer.start_span(
            "engine.queue", context=parent, start_time=self._ns(self.submitted)
        )
        queue.end(self._ns(admitted if admitted is not None else ended))
        if admitted is None:  # cancelled or refused while waiting
            return
        prefill = _tracer.start_span(
            "engine.prefill",
            context=parent,
            start_time=self._ns(admitted),
            attributes={"chatforge.prefix_cached_tokens": self.generation.cached_tokens},
        )
        prefill.end(self._ns(self.first_token or ended))
        if self.first_token is not None:
            decode = _tracer.start_span(
                "engine.decode", context=parent, start_time=self._ns(self.first_token)
            )
            decode.end(self._ns(self.last_token))
            output = _tracer.start_span(
                "guardrails.output",
                context=parent,
                start_time=self._ns(self.first_token),
                attributes={"chatforge.busy_seconds": self.output_guard_seconds},
            )
            output.end(self._ns(ended))

    def _fields(self, ended: float) -> dict[str, object]:
        fields: dict[str, object] = {
            "method": self.method,
            "api": self.api,
            "request_id": self.request_id,
            "code": self.code,
            "peer": self.peer,
            "model": self.model,
            "duration_ms": round((ended - self.received) * 1000, 1),
        }
        if self.error:
            fields["error"] = self.error
        if self.request is None:
            return fields
        fields.update(
            adapter=self.adapter,
            prompt_tokens=self.prompt_tokens,
            guardrails=self.guardrails,
            cache_hit=self.cache_hit,
            rag_collection=self.rag_collection,
            rag_k=self.rag_k,
        )
        admitted = self._admitted()
        if admitted is not None:
            fields["queue_ms"] = round(self.generation.queued_seconds * 1000, 1)
            fields["prefix_cached_tokens"] = self.generation.cached_tokens
            if self.first_token is not None:
                fields["prefill_ms"] = round((self.first_token - admitted) * 1000, 1)
        if self.finished is not None:
            usage = self.finished.usage
            fields.update(
                completion_tokens=usage.completion_tokens,
                ttft_ms=round(usage.time_to_first_token_ms, 1),
                tokens_per_second=round(usage.tokens_per_second, 2),
                finish_reason=chat_pb2.FinishReason.Name(self.finished.finish_reason),
            )
        if content_logging():
            fields.update(messages=self.messages, answer="".join(self.answer))
        return fields
