"""OpenTelemetry tracing, configured only by the standard `OTEL_*` environment variables.

Design decisions:
- Off unless asked for: tracing starts when `OTEL_TRACES_EXPORTER` names exporters
  (`otlp`, `console`) or an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT`,
  `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), unless `OTEL_SDK_DISABLED=true`. (The SDK's own
  default exporter is `otlp`; we do not follow it, so a laptop without a collector never
  retries sends to localhost:4317.) Off, the API's no-op tracer stays: no SDK objects, no
  interceptors, no exporter thread; starting a span costs one function call.
- Everything else is the SDK reading the variables itself: `OTEL_SERVICE_NAME` and
  `OTEL_RESOURCE_ATTRIBUTES` (the resource), `OTEL_TRACES_SAMPLER[_ARG]` (the provider),
  `OTEL_BSP_*` (the batch processor), `OTEL_EXPORTER_OTLP_*` (the exporters) and
  `OTEL_PROPAGATORS` (W3C trace context and baggage by default).
  `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` picks the OTLP transport: grpc (the default) or
  http/protobuf.
- The server span of each RPC comes from the OpenTelemetry gRPC instrumentation's server
  interceptor, which also reads the caller's W3C `traceparent` from the metadata. With
  tracing off a server still reads that header (`remote_context`), so its log lines carry
  the caller's trace id: logs and traces join even when only the client traces.
- Clients inject the current context into their call's metadata (`trace_headers`); the
  UI makes its own GenAI client span current while it builds the call.
- Spans still buffered are flushed at exit: the SDK's provider registers its shutdown
  with atexit.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

_OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_enabled = False


def wanted_exporters() -> list[str]:
    """The span exporters the environment asks for; empty when tracing is off."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [n.strip().lower() for n in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n]
    if names:
        return [] if names == ["none"] else names
    return ["otlp"] if any(os.environ.get(v) for v in _OTLP_ENDPOINTS) else []


def configure_tracing(service_name: str) -> bool:
    """Install the SDK's tracer provider when the environment asks for tracing; whether it
    did. `service_name` applies unless `OTEL_SERVICE_NAME` (or the resource) names one."""
    global _enabled
    exporters = wanted_exporters()
    if not exporters or _enabled:
        return _enabled
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    provider = TracerProvider(resource=resource)
    for name in exporters:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    trace.set_tracer_provider(provider)
    _enabled = True
    return True


def _exporter(name: str):
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER: unknown exporter {name!r}; use otlp or console")
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    )
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    elif protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL: unsupported {protocol!r}; use grpc or http/protobuf"
        )
    return OTLPSpanExporter()


def tracer(name: str) -> trace.Tracer:
    """A tracer; the API's no-op one while tracing is off."""
    return trace.get_tracer(name)


def server_interceptors(aio: bool) -> list:
    """The gRPC instrumentation's server interceptor (a span per RPC), or none when off."""
    if not _enabled:
        return []
    from opentelemetry.instrumentation import grpc as grpc_instrumentation

    if aio:
        return [grpc_instrumentation.aio_server_interceptor()]
    return [grpc_instrumentation.server_interceptor()]


def remote_context(metadata: Iterable[tuple[str, str | bytes]]) -> otel_context.Context:
    """The trace context a caller sent in its gRPC metadata (W3C `traceparent`)."""
    carrier = {key: value for key, value in metadata if isinstance(value, str)}
    return propagate.extract(carrier)


def attach_remote(metadata: Iterable[tuple[str, str | bytes]]) -> object | None:
    """Make the caller's trace context current unless a server span already is (the
    instrumentation's interceptor did it); the token to `detach`, or None."""
    if trace.get_current_span().get_span_context().is_valid:
        return None
    return otel_context.attach(remote_context(metadata))


def detach(token: object | None) -> None:
    if token is not None:
        otel_context.detach(token)


def trace_headers() -> list[tuple[str, str]]:
    """The current context as gRPC metadata (`traceparent`, ...); empty without a span."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return list(carrier.items())
