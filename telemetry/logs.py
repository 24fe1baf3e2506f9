"""Logging setup for every command line: JSON lines or text, with each request's ids.

Design decisions:
- JSON lines come from python-json-logger (a kept library); the text format is the
  standard library's formatter plus the same extra fields as `key=value` pairs, so both
  formats carry exactly the same information.
- `--log-format auto` (the default) writes JSON when stderr is not a terminal (a service
  under systemd, Docker or a test harness) and text for a person at a terminal.
- The request's ids live in a `ContextVar` set by `log_context`, and a handler filter
  copies them onto every record, whatever logger wrote it: a library or a helper module
  logs with the request id without being handed it. The trace id and span id are read
  from the current OpenTelemetry span the same way, so logs and traces join on trace_id.
- `--log-content` is a process-wide switch read with `content_logging()`: message text
  and answers are personal data, so they are never logged unless an operator opts in.
- Noisy libraries that log every index build or HTTP request are held at WARNING.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, TextIO

from opentelemetry import trace
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

FORMATS = ("auto", "json", "text")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_NOISY = ("faiss.loader", "sentence_transformers", "httpx", "httpcore", "urllib3", "bm25s")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

_fields: ContextVar[Mapping[str, Any]] = ContextVar(
    "chatforge_log_fields", default=MappingProxyType({})
)
_log_content = False


def logging_arguments() -> argparse.ArgumentParser:
    """The logging flags, as a parent parser every command line includes."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("logging")
    group.add_argument(
        "--log-format",
        choices=FORMATS,
        default="auto",
        help="json lines, or text; auto: json unless stderr is a terminal",
    )
    group.add_argument("--log-level", choices=LEVELS, default="INFO", type=str.upper)
    group.add_argument(
        "--log-content",
        action="store_true",
        help="also log message and answer text (personal data: off by default)",
    )
    return parent


def configure_logging(
    log_format: str = "auto",
    level: str = "INFO",
    log_content: bool = False,
    stream: TextIO | None = None,
) -> None:
    """Replace the root logger's handlers with one that writes `log_format` to `stream`."""
    global _log_content
    _log_content = log_content
    stream = stream or sys.stderr
    if log_format == "auto":
        log_format = "text" if stream.isatty() else "json"
    handler = logging.StreamHandler(stream)
    handler.addFilter(_add_context)
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "{asctime}{levelname}{name}{message}",
                style="{",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(_TextFormatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure_from_args(args: argparse.Namespace) -> None:
    configure_logging(args.log_format, args.log_level, args.log_content)


def content_logging() -> bool:
    """Whether message text may be logged (`--log-content`)."""
    return _log_content


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Put `fields` (request_id, model, ...) on every record logged inside the block."""
    token = _fields.set({**_fields.get(), **fields})
    try:
        yield
    finally:
        # A block left from another context (an async generator closed by the event loop's
        # finaliser) cannot reset; the context that holds the fields is discarded anyway.
        with contextlib.suppress(ValueError):
            _fields.reset(token)


def context_fields() -> dict[str, Any]:
    """The fields `log_context` set here, with the current span's trace and span ids."""
    fields = dict(_fields.get())
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        fields["trace_id"] = trace.format_trace_id(span.trace_id)
        fields["span_id"] = trace.format_span_id(span.span_id)
    return fields


def _add_context(record: logging.LogRecord) -> bool:
    for key, value in context_fields().items():
        if not hasattr(record, key):  # a field passed with `extra=` wins
            setattr(record, key, value)
    return True


class _TextFormatter(logging.Formatter):
    """The standard text line, then every extra field as key=value."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # before any traceback
        line = super().formatMessage(record)
        extras = [
            f"{key}={value}"
            for key, value in record.__dict__.items()
            if key not in RESERVED_ATTRS and key != "taskName" and not key.startswith("_")
        ]
        return " ".join([line, *extras])
