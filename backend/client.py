"""The Python client of the chat API: streams events, with deadlines and safe retries.

Design decisions:
- It speaks only the proto (the boundary between server and clients); the UI, the evals
  and the benchmarks all use it, so retry and deadline behaviour is the same everywhere.
- Retries (exponential backoff with full jitter) happen only on UNAVAILABLE and only before
  the first text delta: a retry then cannot duplicate answer text. A retried call may
  repeat its `started` event; consumers treat `started` as "(re)starting".
- How to reach the server (API key, TLS) is a `ClientSettings`, read from the environment
  when not given: every client (UI, evals, benchmarks, the chat CLI) then authenticates
  the same way and no caller passes a secret on a command line. The key travels as
  `authorization: Bearer` metadata added by a channel interceptor, which works over TLS
  and over plaintext loopback alike (gRPC call credentials require TLS).
- A `ChatStream` can be cancelled from another thread (a UI stop button); closing its
  iterator early cancels the gRPC call too, so an abandoned stream never keeps the server
  generating.
- A call carries its request id twice, in the request and as `x-request-id` metadata (what
  proxies and log pipelines read), and the trace context current when `chat()` is called
  as W3C `traceparent` metadata, so the server's spans and log lines join the caller's
  trace. Without a current span nothing is added.
"""

from __future__ import annotations

import random
import threading
import time
from collections import namedtuple
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from backend.settings import ClientSettings, load_settings
from chat.v1 import chat_pb2, chat_pb2_grpc
from telemetry.tracing import trace_headers

# gRPC's own reconnect backoff grows to 2 minutes after refused connections, during which
# calls fail at once without trying; cap it so our retries reach a restarted server.
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    initial_backoff: float = 0.2
    max_backoff: float = 5.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_backoff, self.initial_backoff * 2**attempt))


def as_messages(messages: str | Sequence[dict[str, str] | chat_pb2.Message]):
    if isinstance(messages, str):
        return [chat_pb2.Message(role="user", content=messages)]
    return [m if isinstance(m, chat_pb2.Message) else chat_pb2.Message(**m) for m in messages]


class ChatStream:
    """The events of one Chat call; iterate once, cancel from anywhere."""

    def __init__(
        self,
        client: ChatClient,
        request: chat_pb2.ChatRequest,
        timeout: float | None,
        metadata: Sequence[tuple[str, str]] = (),
    ):
        self._client = client
        self.request = request
        self._timeout = timeout
        self._metadata = tuple(metadata)
        self._call = None
        self._cancelled = threading.Event()
        self._lock = threading.Lock()

    def cancel(self) -> None:
        self._cancelled.set()
        with self._lock:
            if self._call is not None:
                self._call.cancel()

    def __iter__(self) -> Iterator[chat_pb2.ChatEvent]:
        policy = self._client.retry
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        for attempt in range(policy.attempts):
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            with self._lock:
                if self._cancelled.is_set():
                    return
                self._call = self._client.stub.Chat(
                    self.request, timeout=remaining, metadata=self._metadata
                )
            got_delta = False
            try:
                for event in self._call:
                    got_delta = got_delta or event.HasField("delta")
                    yield event
                return
            except grpc.RpcError as error:
                if self._cancelled.is_set() and error.code() == grpc.StatusCode.CANCELLED:
                    return
                retryable = error.code() == grpc.StatusCode.UNAVAILABLE and not got_delta
                if not retryable or attempt == policy.attempts - 1:
                    raise
            finally:
                # Reached on early close of this iterator too: stop the server's work.
                self._call.cancel()
            pause = policy.delay(attempt)
            if deadline is not None and time.monotonic() + pause >= deadline:
                raise TimeoutError("deadline passed while the server was unavailable")
            time.sleep(pause)


class _BearerAuth(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds `authorization: Bearer KEY` to every call of a channel."""

    def __init__(self, key: str) -> None:
        self._header = ("authorization", f"Bearer {key}")

    def _with_key(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            [*(details.metadata or ()), self._header],
            details.credentials,
            details.wait_for_ready,
            details.compression,
        )

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._with_key(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._with_key(client_call_details), request)


class _CallDetails(
    namedtuple(
        "_CallDetails",
        ["method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"],
    ),
    grpc.ClientCallDetails,
):
    pass


def _read(path: Path | None) -> bytes | None:
    return path.expanduser().read_bytes() if path is not None else None


def open_channel(target: str, settings: ClientSettings) -> grpc.Channel:
    """A channel to `target`: TLS when the settings name a CA, the API key when they have one."""
    if settings.tls:
        credentials = grpc.ssl_channel_credentials(
            _read(settings.tls_ca), _read(settings.tls_client_key), _read(settings.tls_client_cert)
        )
        channel = grpc.secure_channel(target, credentials, options=_CHANNEL_OPTIONS)
    else:
        channel = grpc.insecure_channel(target, options=_CHANNEL_OPTIONS)
    if settings.api_key is not None:
        channel = grpc.intercept_channel(channel, _BearerAuth(settings.api_key.get_secret_value()))
    return channel


class ChatClient:
    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        timeout: float | None = 300.0,
        retry: RetryPolicy | None = None,
        settings: ClientSettings | None = None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.settings = settings or load_settings(ClientSettings)
        self.channel = open_channel(target, self.settings)
        self.stub = chat_pb2_grpc.ChatServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def chat(
        self,
        messages: str | Sequence[dict[str, str] | chat_pb2.Message],
        model: str = "",
        sampling: chat_pb2.SamplingParams | dict | None = None,
        rag: chat_pb2.RagOptions | dict | None = None,
        request_id: str = "",
        timeout: float | None = None,
    ) -> ChatStream:
        if isinstance(sampling, dict):
            sampling = chat_pb2.SamplingParams(**sampling)
        if isinstance(rag, dict):
            rag = chat_pb2.RagOptions(**rag)
        request = chat_pb2.ChatRequest(
            model=model,
            messages=as_messages(messages),
            sampling=sampling,
            rag=rag,
            request_id=request_id,
        )
        metadata = [("x-request-id", request_id)] if request_id else []
        metadata += trace_headers()  # computed now: the caller's span is current here
        timeout = timeout if timeout is not None else self.timeout
        return ChatStream(self, request, timeout, metadata)

    def list_models(self) -> chat_pb2.ListModelsResponse:
        return self.stub.ListModels(chat_pb2.ListModelsRequest(), timeout=30)

    def get_model(self, name: str = "") -> chat_pb2.ModelCard:
        return self.stub.GetModel(chat_pb2.GetModelRequest(name=name), timeout=30)

    def score(
        self,
        continuations: Sequence[str],
        context: str = "",
        messages: Sequence[dict[str, str] | chat_pb2.Message] | None = None,
        model: str = "",
        timeout: float | None = None,
    ) -> chat_pb2.ScoreResponse:
        """Log-likelihood of each continuation after a raw-text or chat context."""
        request = chat_pb2.ScoreRequest(
            model=model,
            context=context,
            messages=as_messages(messages) if messages else None,
            continuations=list(continuations),
        )
        return self.stub.Score(request, timeout=timeout if timeout is not None else self.timeout)

    def record_eval(self, name: str, results_json: str, model: str = "") -> str:
        """Store a results file in the model's evals/ folder on the server; its path there."""
        request = chat_pb2.RecordEvalRequest(model=model, name=name, results_json=results_json)
        return self.stub.RecordEval(request, timeout=60).path

    def run_eval(
        self, suite: str, model: str = "", size: int = 0, full: bool = False,
        timeout: float | None = None,
    ) -> grpc.Future:  # fmt: skip
        """Admin: run a suite on the server's host. Iterate the call for its EvalProgress
        messages (the last one `finished`); `.cancel()` stops the run. Not retried (a run
        is not idempotent) and without a deadline unless given: suites take minutes."""
        request = chat_pb2.RunEvalRequest(suite=suite, model=model, size=size, full=full)
        return self.stub.RunEval(request, timeout=timeout)

    def eval_rows(
        self, name: str, model: str = "", page_size: int = 0, page_token: str = ""
    ) -> chat_pb2.GetEvalRowsResponse:
        """One page of the item rows of eval result `name` (an EvalSummary's name)."""
        request = chat_pb2.GetEvalRowsRequest(
            model=model, name=name, page_size=page_size, page_token=page_token
        )
        return self.stub.GetEvalRows(request, timeout=60)

    def all_eval_rows(self, name: str, model: str = "") -> list[str]:
        """Every item row of eval result `name`, as JSON texts, fetched page by page."""
        rows: list[str] = []
        token = ""
        while True:
            page = self.eval_rows(name, model, page_token=token)
            rows.extend(page.rows_json)
            token = page.next_page_token
            if not token:
                return rows

    def reload_models(self, timeout: float = 600.0) -> chat_pb2.ReloadModelsResponse:
        """Admin: re-read models.yaml now; returns once new models are loaded."""
        return self.stub.ReloadModels(chat_pb2.ReloadModelsRequest(), timeout=timeout)

    def check_text(self, text: str, stage: str = "input") -> chat_pb2.GuardrailVerdict:
        """The guardrail verdict alone (stage: input, retrieval or output)."""
        return self.stub.CheckText(chat_pb2.CheckTextRequest(text=text, stage=stage), timeout=30)

    def retrieve(
        self,
        query: str,
        collection: str = "",
        k: int = 0,
        dense_weight: float | None = None,
        lexical_weight: float | None = None,
    ) -> chat_pb2.RetrieveResponse:
        request = chat_pb2.RetrieveRequest(
            query=query,
            collection=collection,
            k=k,
            dense_weight=dense_weight,
            lexical_weight=lexical_weight,
        )
        return self.stub.Retrieve(request, timeout=30)

    def list_collections(self) -> chat_pb2.ListCollectionsResponse:
        return self.stub.ListCollections(chat_pb2.ListCollectionsRequest(), timeout=30)

    def is_serving(self, timeout: float = 2.0) -> bool:
        try:
            response = self._health.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError:
            return False
        return response.status == health_pb2.HealthCheckResponse.SERVING

    def wait_until_serving(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_serving():
                return True
            time.sleep(0.25)
        return False
