"""The logging and tracing set-up shared by every process (telemetry/)."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry import context as otel_context

from telemetry import logs
from telemetry.logs import configure_logging, content_logging, log_context, logging_arguments
from telemetry.tracing import remote_context, trace_headers, wanted_exporters

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def restore_logging(monkeypatch):
    monkeypatch.setattr(logs, "_log_content", logs._log_content)  # put back afterwards
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_the_request_and_trace_ids(restore_logging):
    out = io.StringIO()  # not a terminal: auto means JSON
    configure_logging("auto", "INFO", stream=out)
    token = otel_context.attach(remote_context([("traceparent", TRACEPARENT)]))
    try:
        with log_context(request_id="req-1"):
            logging.getLogger("chatforge.test").info("done %d", 3, extra={"tokens": 7})
        logging.getLogger("chatforge.test").info("outside")
    finally:
        otel_context.detach(token)
    inside, outside = (json.loads(line) for line in out.getvalue().splitlines())
    assert inside["message"] == "done 3" and inside["tokens"] == 7
    assert (inside["request_id"], inside["trace_id"]) == ("req-1", TRACE_ID)
    assert (inside["level"], inside["logger"]) == ("INFO", "chatforge.test") and inside["time"]
    assert "request_id" not in outside and outside["trace_id"] == TRACE_ID


def test_text_lines_show_the_same_fields(restore_logging):
    out = io.StringIO()
    configure_logging("text", "WARNING", stream=out)
    with log_context(request_id="req-2"):
        logging.getLogger("chatforge.test").info("hidden below WARNING")
        logging.getLogger("chatforge.test").warning("slow", extra={"ttft_ms": 812.5})
    [line] = out.getvalue().splitlines()
    assert " WARNING chatforge.test slow " in line
    assert "ttft_ms=812.5" in line and "request_id=req-2" in line
    assert "trace_id" not in line  # no span, no trace id


def test_content_logging_is_off_unless_asked(restore_logging):
    parser = logging_arguments()
    assert parser.parse_args([]).log_content is False
    args = parser.parse_args(["--log-content", "--log-format", "json", "--log-level", "debug"])
    configure_logging(args.log_format, args.log_level, args.log_content, stream=io.StringIO())
    assert content_logging() and logging.getLogger().level == logging.DEBUG


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console,otlp"}, ["console", "otlp"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, []),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, []),
    ],
)
def test_tracing_is_on_only_when_the_environment_asks(monkeypatch, env, wanted):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                 "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert wanted_exporters() == wanted


def test_the_current_trace_context_goes_out_as_metadata():
    assert trace_headers() == []  # no span: nothing to propagate
    token = otel_context.attach(remote_context([("traceparent", TRACEPARENT)]))
    try:
        assert dict(trace_headers())["traceparent"] == TRACEPARENT
    finally:
        otel_context.detach(token)
