"""What the UI reports about itself: Prometheus metrics on a port of its own, and a GenAI
client span per chat turn whose context travels to the backend.

Design decisions:
- The UI's metrics (page loads, chat turns by model and outcome, backend errors by gRPC
  code) live in one registry of their own, module-level like the app's one gRPC client:
  every session of the process counts into the same series. They are served on their own
  port (`--metrics-port`, default 9101), apart from the Gradio app's, so a public UI never
  exposes them on its public port.
- A turn's span follows the GenAI conventions for a client call (`chat {model}`, kind
  CLIENT, `gen_ai.*` attributes). It is made current only while the gRPC call is built,
  never across the reply generator's yields: Gradio may resume a generator on another
  thread, where the context that was attached is not the current one.
- One request id per turn, made here, goes to the backend (request field and metadata),
  names the span's response id and is shown under the answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, start_http_server

from backend.client import ChatClient, ChatStream
from chat.v1 import chat_pb2
from telemetry import genai
from telemetry.tracing import tracer

_tracer = tracer("chatforge.ui")


class UiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.page_loads = Counter(
            "chatforge_ui_page_loads", "Browser page loads of the UI.", registry=self.registry
        )
        self.chat_turns = Counter(
            "chatforge_ui_chat_turns",
            "Chat turns sent, by model (empty: the server's default) and outcome "
            "(answered, blocked, stopped, error, empty).",
            ["model", "outcome"],
            registry=self.registry,
        )
        self.backend_errors = Counter(
            "chatforge_ui_backend_errors",
            "Backend calls of the UI that failed, by gRPC status code.",
            ["code"],
            registry=self.registry,
        )

    def serve(self, port: int, host: str):
        """Start the /metrics endpoint; returns (server, thread)."""
        return start_http_server(port, addr=host, registry=self.registry)

    def count_error(self, error: grpc.RpcError | TimeoutError) -> None:
        self.backend_errors.labels(error_code(error)).inc()


def error_code(error: grpc.RpcError | TimeoutError) -> str:
    """The gRPC code name; the client's own deadline while retrying counts as
    DEADLINE_EXCEEDED, as ui/errors.py reports it."""
    return error.code().name if isinstance(error, grpc.RpcError) else "DEADLINE_EXCEEDED"


METRICS = UiMetrics()


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def turn_span(model: str) -> Iterator[trace.Span]:
    """A started (not current) client span for one turn; ended when the block exits."""
    span = _tracer.start_span(genai.span_name(model), kind=trace.SpanKind.CLIENT)
    try:
        yield span
    finally:
        span.end()


def start_call(
    client: ChatClient, span: trace.Span, messages, request_id: str, **kwargs
) -> ChatStream:
    """Build the gRPC call with the span current, so its context goes out as metadata."""
    with trace.use_span(span, end_on_exit=False):
        stream = client.chat(messages, request_id=request_id, **kwargs)
    span.set_attributes(genai.request_attributes(stream.request))
    return stream


def finish_span(
    span: trace.Span,
    request_id: str,
    model: str,
    finished: chat_pb2.Finished | None,
    error: grpc.RpcError | TimeoutError | None,
) -> None:
    span.set_attributes(genai.response_attributes(request_id, model, finished))
    if error is not None:
        span.set_attribute("error.type", error_code(error))
        span.record_exception(error)
        span.set_status(trace.StatusCode.ERROR, str(error))
