"""The OpenAI-compatible HTTP API (FastAPI on uvicorn), served beside gRPC.

Design decisions:
- In-process, on the gRPC server's event loop (`python -m backend serve --http-port N`),
  not a separate proxy: the keys, the rate limiter, the metrics and the call records are
  the very objects gRPC uses, so a key's limits are one budget across both APIs and a
  proxy hop adds no latency to every token. uvicorn serves a socket the server binds
  itself (port 0 works, and the bound port goes into the `listening on` line); its own
  signal handling is off, the server's drain stops it.
- The pipeline is not re-implemented: a chat completion becomes a `chat_pb2.ChatRequest`
  and runs through `ChatService.Chat` with an `HttpContext`, the small part of a gRPC
  servicer context the service uses (metadata, peer, initial metadata, abort). The
  guardrails, retrieval, sampling, request id, trace context, log line and metrics are
  therefore the gRPC call's. OpenAI <-> protobuf conversion lives only in this module.
- Errors are OpenAI's error object. A status the pipeline raises maps to the HTTP status
  a client expects (`HTTP_STATUS`); a request body FastAPI cannot parse is a 400 naming
  the field, never FastAPI's 422; a queue or rate-limit refusal is a 429 with
  `Retry-After`. A failure after a stream has started is one `data: {"error": ...}` chunk.
- Parameters the engine does not have are refused with a message, never ignored:
  `n` > 1, `presence_penalty`/`frequency_penalty` other than 0 (chatforge's
  `repetition_penalty` is offered instead), `logprobs` (the engine returns no per-token
  log-probabilities), `response_format` other than text.
- chatforge's own options sit beside OpenAI's fields (`rag`, `top_k`,
  `repetition_penalty`); citations and guardrail notices come back as extra fields
  (`citations`, `guardrails`), all in the OpenAPI schema at /docs.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import grpc
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from backend.auth import AuthInterceptor, Refused, chat_tokens
from backend.call_record import REQUEST_ID_HEADER, request_id_of
from backend.chat_service import ChatService
from chat.v1 import chat_pb2

CHAT_METHOD = "/chat.v1.ChatService/Chat"
MODELS_METHOD = "/chat.v1.ChatService/ListModels"
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
_ERROR_TYPE = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable",
}
# A body over this is refused before it is parsed: the largest valid chat (every message
# at the content limit) fits well within it.
MAX_BODY_BYTES = 16 * 1024 * 1024
_FINISH = {
    chat_pb2.STOP: "stop",
    chat_pb2.STOP_SEQUENCE: "stop",
    chat_pb2.LENGTH: "length",
    chat_pb2.BLOCKED: "content_filter",
}


@dataclass
class HttpConfig:
    """Where the HTTP API listens (the gRPC server's interface) and its TLS files."""

    port: int = 0
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, headers=None):
        super().__init__(message)
        self.status, self.message, self.param = status, message, param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        kind = _ERROR_TYPE.get(self.status, "server_error")
        return {"error": {"message": self.message, "type": kind, "param": self.param,
                          "code": None}}  # fmt: skip

    def response(self, request_id: str) -> JSONResponse:
        headers = {**self.headers, REQUEST_ID_HEADER: request_id}
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def _from_status(code: grpc.StatusCode, message: str, trailers=()) -> ApiError:
    status = HTTP_STATUS.get(code, 500)
    headers = {}
    retry_ms = next((v for k, v in trailers if k == "retry-after-ms"), None)
    if status == 429:  # a full queue names no delay: a second is the engine's usual turnover
        headers["Retry-After"] = str(max(1, math.ceil(int(retry_ms or 1000) / 1000)))
    return ApiError(status, message, headers=headers)


class HttpContext:
    """What ChatService needs of a gRPC servicer context, for one HTTP call."""

    api = "http"

    def __init__(self, metadata: list[tuple[str, str]], peer: str) -> None:
        self._metadata = metadata
        self._peer = peer

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return self._metadata

    def peer(self) -> str:
        return self._peer

    async def send_initial_metadata(self, metadata) -> None:
        pass  # the request id is known before the call and set on the response

    def time_remaining(self) -> float | None:
        return None

    async def abort(self, code: grpc.StatusCode, message: str, trailers=()) -> None:
        raise _from_status(code, message, trailers)


# --- The request and response schemas ---------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None


class StreamOptions(_Strict):
    include_usage: bool = False


class RagRequest(_Strict):
    """chatforge: answer from a retrieval collection, with citations."""

    collection: str = Field("", description="empty: the server's default collection")
    k: int = Field(0, description="chunks to retrieve; 0: the server's default")


class ResponseFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class ChatCompletionRequest(_Strict):
    model: str = Field("", description="a name from /v1/models; empty: the default model")
    messages: list[ChatMessage]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(None, description="only 1")
    presence_penalty: float | None = Field(None, description="only 0 (see repetition_penalty)")
    frequency_penalty: float | None = Field(None, description="only 0 (see repetition_penalty)")
    logprobs: bool | None = Field(None, description="not available: the engine returns none")
    top_logprobs: int | None = Field(None, description="not available")
    response_format: ResponseFormat | None = Field(None, description="only type text")
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(None, description="accepted, not used")
    # chatforge's own options
    rag: RagRequest | None = Field(None, description="chatforge: retrieval")
    top_k: int | None = Field(None, description="chatforge: top-k sampling (0: off)")
    repetition_penalty: float | None = Field(None, description="chatforge: (0, 2]; 1: off")


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Citation(BaseModel):
    index: int
    title: str
    source_path: str
    anchor: str
    url: str
    snippet: str
    score: float


class GuardrailNotice(BaseModel):
    stage: str
    action: str
    category: str
    reason: str
    source: str


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str | None
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    citations: list[Citation] = Field([], description="chatforge: the sources [n] refers to")
    guardrails: list[GuardrailNotice] = Field([], description="chatforge: guardrail findings")


class ModelEntry(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "chatforge"
    context_length: int
    parameters: int
    architecture: str
    quantization: str
    is_default: bool


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelEntry]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


_ERRORS = {
    status: {"model": ErrorBody, "description": kind}
    for status, kind in _ERROR_TYPE.items()
    if status != 413
}


# --- OpenAI <-> protobuf ------------------------------------------------------------------


def _text(content: str | list[TextPart]) -> str:
    return content if isinstance(content, str) else "".join(part.text for part in content)


def _refuse_unsupported(body: ChatCompletionRequest) -> None:
    if body.n not in (None, 1):
        raise ApiError(400, f"n: {body.n} choices asked; this server returns one (n=1)", "n")
    for name in ("presence_penalty", "frequency_penalty"):
        if getattr(body, name) not in (None, 0):
            raise ApiError(
                400,
                f"{name} is not supported: the engine has a multiplicative "
                "`repetition_penalty` (chatforge's field, (0, 2], 1 off) instead; send 0 or "
                "leave it out",
                name,
            )
    if body.logprobs or body.top_logprobs:
        raise ApiError(
            400,
            "logprobs: this server's engines return no per-token log-probabilities; "
            "leave logprobs out (the gRPC Score RPC scores given continuations)",
            "logprobs",
        )
    if body.response_format is not None and body.response_format.type != "text":
        raise ApiError(
            400,
            f"response_format {body.response_format.type}: no engine of this server can "
            "constrain decoding yet, and an unconstrained reply could be invalid JSON; "
            "send type text or leave it out",
            "response_format",
        )


def to_chat_request(body: ChatCompletionRequest, request_id: str) -> chat_pb2.ChatRequest:
    """The ChatRequest a chat completion asks for (refusing what the engine lacks)."""
    _refuse_unsupported(body)
    if body.max_tokens is not None and body.max_completion_tokens not in (None, body.max_tokens):
        raise ApiError(
            400, "max_tokens and max_completion_tokens differ; send one", "max_completion_tokens"
        )
    sampling = chat_pb2.SamplingParams()
    max_tokens = body.max_completion_tokens or body.max_tokens
    numbers = {
        "temperature": body.temperature,
        "top_p": body.top_p,
        "max_tokens": max_tokens,
        "seed": body.seed,
        "top_k": body.top_k,
        "repetition_penalty": body.repetition_penalty,
    }
    for name, value in numbers.items():
        if value is not None:
            try:
                setattr(sampling, name, value)
            except (ValueError, TypeError):  # beyond the proto's integer range
                raise ApiError(400, f"{name}: {value} is out of range", name) from None
    stops = [body.stop] if isinstance(body.stop, str) else body.stop or []
    sampling.stop.extend(stops)
    request = chat_pb2.ChatRequest(
        model=body.model,
        messages=[chat_pb2.Message(role=m.role, content=_text(m.content)) for m in body.messages],
        sampling=sampling,
        request_id=request_id,
    )
    if body.rag is not None:
        request.rag.CopyFrom(
            chat_pb2.RagOptions(enabled=True, collection=body.rag.collection, k=body.rag.k)
        )
    return request


def _citation(c: chat_pb2.Citation) -> dict[str, Any]:
    return Citation(
        index=c.index, title=c.title, source_path=c.source_path, anchor=c.anchor, url=c.url,
        snippet=c.snippet, score=c.score,
    ).model_dump()  # fmt: skip


def _notice(g: chat_pb2.GuardrailEvent) -> dict[str, Any]:
    action = chat_pb2.GuardrailAction.Name(g.action).lower()
    return GuardrailNotice(
        stage=g.stage, action=action, category=g.category, reason=g.reason, source=g.source
    ).model_dump()


def _finish_reason(finished: chat_pb2.Finished) -> str:
    reason = _FINISH.get(finished.finish_reason)
    if reason is None:  # cancelled: only a drain cancels a call whose client is still there
        raise ApiError(503, "the server stopped this reply while shutting down; retry")
    return reason


def _usage(finished: chat_pb2.Finished) -> dict[str, int]:
    usage = finished.usage
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.prompt_tokens + usage.completion_tokens,
    ).model_dump()


# --- The app ------------------------------------------------------------------------------


class HttpApi:
    """The FastAPI app over one ChatService (and the gRPC server's key check, if any)."""

    def __init__(self, service: ChatService, auth: AuthInterceptor | None) -> None:
        self.service = service
        self.auth = auth
        self.app = FastAPI(
            title="chatforge",
            version="1",
            description="OpenAI-compatible chat completions over chatforge's pipeline "
            "(guardrails, retrieval, keys, limits).",
        )
        self.app.add_exception_handler(RequestValidationError, self._invalid_body)
        self.app.add_exception_handler(ApiError, self._api_error)
        self.app.middleware("http")(self._limit_body)
        self.app.post(
            "/v1/chat/completions",
            response_model=ChatCompletion,
            responses={**_ERRORS, 413: {"model": ErrorBody, "description": "body too large"},
                       200: {"content": {"text/event-stream": {}}}},
        )(self.chat_completions)  # fmt: skip
        self.app.get("/v1/models", response_model=ModelList, responses=_ERRORS)(self.models)
        self.app.get("/health")(self.health)

    # Errors -----------------------------------------------------------------------------

    @staticmethod
    def _request_id(request: Request) -> str:
        return request_id_of(list(request.headers.items()))

    async def _invalid_body(self, request: Request, exc: RequestValidationError):
        problem = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid body"}
        where = ".".join(str(p) for p in problem["loc"] if p != "body")
        error = ApiError(400, f"{where or 'body'}: {problem['msg']}", where or None)
        return error.response(request.state.request_id)

    async def _api_error(self, request: Request, exc: ApiError):
        return exc.response(request.state.request_id)

    async def _limit_body(self, request: Request, call_next):
        request.state.request_id = self._request_id(request)
        length = request.headers.get("content-length", "0")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            error = ApiError(413, f"request body of {length} bytes; the limit is "
                             f"{MAX_BODY_BYTES} bytes: send shorter messages")  # fmt: skip
            return error.response(request.state.request_id)
        response = await call_next(request)
        response.headers[REQUEST_ID_HEADER] = request.state.request_id
        return response

    def _admit(self, request: Request, method: str, stream: bool):
        """The caller's key, checked as gRPC checks it (None: the server has no keys)."""
        if self.auth is None:
            return None
        try:
            return self.auth.check(method, list(request.headers.items()), stream)
        except Refused as refused:
            raise _from_status(refused.code, refused.message, refused.trailers) from None

    def _context(self, request: Request) -> HttpContext:
        headers = [(k, v) for k, v in request.headers.items() if k != REQUEST_ID_HEADER]
        headers.append((REQUEST_ID_HEADER, request.state.request_id))
        client = request.client
        peer = f"ipv4:{client.host}:{client.port}" if client else "unknown"
        return HttpContext(headers, peer)

    # Routes -----------------------------------------------------------------------------

    async def health(self) -> dict[str, str]:
        """`ok` once the models are loaded; 503 while loading or draining."""
        if self.service.draining or not self.service.models.ready.is_set():
            raise ApiError(503, "the server is loading its models or shutting down; retry")
        return {"status": "ok"}

    async def models(self, request: Request) -> ModelList:
        self._admit(request, MODELS_METHOD, stream=False)
        reply = await self.service.ListModels(chat_pb2.ListModelsRequest(), self._context(request))
        return ModelList(data=[_model_entry(card) for card in reply.models])

    async def chat_completions(self, body: ChatCompletionRequest, request: Request):
        request_id = request.state.request_id
        chat = to_chat_request(body, request_id)
        key = self._admit(request, CHAT_METHOD, stream=True)
        events = EventPump(self._metered(self.service.Chat(chat, self._context(request)), key))
        try:
            started = await anext(events)  # admission errors surface here, as a status
        except BaseException:
            await events.aclose()
            raise
        completion_id = f"chatcmpl-{request_id}"
        created = int(time.time())
        if not body.stream:
            return await _complete(events, completion_id, created, started.started.model)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = _stream(events, completion_id, created, started.started.model, include_usage)
        return StreamingResponse(chunks, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})  # fmt: skip

    async def _metered(self, events: AsyncIterator[chat_pb2.ChatEvent], key):
        """The events, counted against the key's token limit; its stream slot given back
        however the call ends (the gRPC interceptor's bookkeeping, here)."""
        try:
            async for event in events:
                if key is not None:
                    self.auth.limiter.add_tokens(key.id, chat_tokens(event))
                yield event
        finally:
            await events.aclose()
            if key is not None:
                self.auth.limiter.end_stream(key.id)


_END = object()


class EventPump:
    """A call's event stream, run in one task of its own and read through a queue.

    The pipeline's contextvars (log fields, trace context) must be set and reset in one
    context, but a streamed reply is read first by the endpoint (to turn an admission
    error into a status) and then by the response's own task. The bounded queue keeps a
    slow client's backlog small; closing the pump cancels the task, which cancels the
    generation as a gRPC client's cancel does."""

    def __init__(self, events: AsyncIterator[chat_pb2.ChatEvent], backlog: int = 64) -> None:
        self._queue: asyncio.Queue = asyncio.Queue(backlog)
        self._task = asyncio.ensure_future(self._run(events))

    async def _run(self, events) -> None:
        try:
            async for event in events:
                await self._queue.put(event)
            await self._queue.put(_END)
        except Exception as exc:  # noqa: BLE001 - handed to the reader, who raises it
            await self._queue.put(exc)
        finally:
            await events.aclose()

    def __aiter__(self) -> EventPump:
        return self

    async def __anext__(self) -> chat_pb2.ChatEvent:
        item = await self._queue.get()
        if item is _END:
            raise StopAsyncIteration
        if isinstance(item, Exception):
            raise item
        return item

    async def aclose(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def _model_entry(card: chat_pb2.ModelCard) -> ModelEntry:
    return ModelEntry(
        id=card.name, created=0, context_length=card.context_length,
        parameters=card.parameters, architecture=card.architecture,
        quantization=card.quantization, is_default=card.is_default,
    )  # fmt: skip


async def _complete(events, completion_id: str, created: int, model: str) -> ChatCompletion:
    text, citations, notices, finished = [], [], [], None
    try:
        async for event in events:
            kind = event.WhichOneof("event")
            if kind == "delta":
                text.append(event.delta.text)
            elif kind == "citations":
                citations += [_citation(c) for c in event.citations.citations]
            elif kind == "guardrail":
                notices.append(_notice(event.guardrail))
            elif kind == "finished":
                finished = event.finished
    finally:
        await events.aclose()
    return ChatCompletion(
        id=completion_id, created=created, model=model,
        choices=[Choice(index=0, message=AssistantMessage(content="".join(text)),
                        finish_reason=_finish_reason(finished))],
        usage=_usage(finished), citations=citations, guardrails=notices,
    )  # fmt: skip


def _sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


async def _stream(events, completion_id: str, created: int, model: str, include_usage: bool):
    """Server-sent events: a first chunk with the assistant role, one chunk per delta,
    the finish reason, the usage chunk when asked, then `[DONE]`."""
    head = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
            "model": model}  # fmt: skip

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _sse({**head, "choices": [choice], **extra})

    try:
        yield chunk({"role": "assistant", "content": ""})
        async for event in events:
            kind = event.WhichOneof("event")
            if kind == "delta" and event.delta.text:
                yield chunk({"content": event.delta.text})
            elif kind == "citations":
                yield chunk({}, citations=[_citation(c) for c in event.citations.citations])
            elif kind == "guardrail":
                yield chunk({}, guardrails=[_notice(event.guardrail)])
            elif kind == "finished":
                yield chunk({}, _finish_reason(event.finished))
                if include_usage:
                    yield _sse({**head, "choices": [], "usage": _usage(event.finished)})
        yield b"data: [DONE]\n\n"
    except ApiError as error:  # after the 200 went out, an error is the stream's last chunk
        yield _sse(error.body())
    finally:
        await events.aclose()


# --- Serving --------------------------------------------------------------------------


class _Uvicorn(uvicorn.Server):
    def capture_signals(self):
        return nullcontext()  # the chat server owns SIGTERM/SIGINT and drains


class HttpServer:
    """uvicorn on the running loop, over a socket bound here (so port 0 works)."""

    def __init__(self, api: HttpApi, host: str, config: HttpConfig) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host.strip("[]"), config.port))
        except OSError as exc:
            self.socket.close()
            raise OSError(f"cannot listen on {host}:{config.port} (HTTP): {exc}") from None
        self.port = self.socket.getsockname()[1]
        self.tls = config.tls_cert is not None
        settings = uvicorn.Config(
            api.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            ssl_certfile=config.tls_cert,
            ssl_keyfile=config.tls_key,
            ssl_ca_certs=config.tls_client_ca,
            ssl_cert_reqs=ssl.CERT_REQUIRED if config.tls_client_ca else ssl.CERT_NONE,
        )
        self._server = _Uvicorn(settings)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._server.serve(sockets=[self.socket]))

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task


def find_auth(interceptors) -> AuthInterceptor | None:
    return next((i for i in interceptors if isinstance(i, AuthInterceptor)), None)
