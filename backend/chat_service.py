"""The ChatService: validation, orchestration and streaming of one call at a time.

Design decisions:
- This is the only layer that knows both the chat format and the transport: it validates
  the request, applies the model's chat template, hands token ids to the model's engine
  and turns the ids that come back into text deltas (never splitting a UTF-8 character)
  and stop-string cuts.
- Errors are raised as `RequestError` before the stream starts and become gRPC status
  codes in one place (`_abort`), so every RPC counts its final code in the metrics.
- A client that cancels, or whose deadline passes, triggers the RPC's termination
  callback, which cancels the engine request; the engine notices within one decode step.
- The service tracks its active streams so the server can drain on SIGTERM: once
  `draining` is set, new calls get UNAVAILABLE while the streams in flight finish.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from backend.detokenize import IncrementalDetokenizer, StopMatcher
from backend.engine import EngineStoppedError, FinishReason, QueueFullError
from backend.logprobs import start_token_id
from backend.metrics import ServerMetrics
from backend.model_card import build_card, record_eval
from backend.model_loader import LoadedModel
from backend.validation import (
    RequestError,
    ValidScore,
    fit_to_context,
    invalid,
    validate_chat,
    validate_eval_record,
    validate_score,
)
from chat.v1 import chat_pb2, chat_pb2_grpc

_FINISH = {
    FinishReason.STOP: chat_pb2.STOP,
    FinishReason.LENGTH: chat_pb2.LENGTH,
    FinishReason.CANCELLED: chat_pb2.CANCELLED,
}


class ModelSet:
    """The loaded models; empty (and not ready) while the server is still loading."""

    def __init__(self) -> None:
        self.models: dict[str, LoadedModel] = {}
        self.default = ""
        self.ready = threading.Event()

    def get(self, name: str) -> LoadedModel:
        if not self.ready.is_set():
            raise RequestError(
                grpc.StatusCode.UNAVAILABLE, "the server is still loading its models; retry"
            )
        loaded = self.models.get(name or self.default)
        if loaded is None:
            raise RequestError(
                grpc.StatusCode.NOT_FOUND,
                f"model: unknown model {name!r}; this server has: {', '.join(self.models)}",
            )
        return loaded


def encode_score_context(loaded: LoadedModel, score: ValidScore) -> list[int]:
    """A chat context as Chat renders it; raw text after the BOS token (EOS if none)."""
    if score.messages is not None:
        return loaded.codec.encode_chat(score.messages)
    start = start_token_id(loaded.codec.tokenizer)
    if start is None:
        raise RequestError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"model `{loaded.name}`: its tokenizer has neither a BOS nor an EOS token to start "
            "a raw-text context; send the context as `messages`",
        )
    return [start, *loaded.codec.encode(score.context)]


class ChatService(chat_pb2_grpc.ChatServiceServicer):
    def __init__(self, models: ModelSet, metrics: ServerMetrics) -> None:
        self.models = models
        self.metrics = metrics
        self.draining = threading.Event()
        self._active = 0
        self._active_changed = threading.Condition()

    # Lifecycle -------------------------------------------------------------------------

    @property
    def active_streams(self) -> int:
        return self._active

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no stream is active; False if the timeout passed first."""
        with self._active_changed:
            return self._active_changed.wait_for(lambda: self._active == 0, timeout)

    @contextmanager
    def _stream(self, model: str, context):
        """Track one active stream; count its tokens and final code however it ends (a
        cancelled client closes the handler's generator mid-stream)."""
        with self._active_changed:
            self._active += 1
        self.metrics.active_streams.labels(model).inc()
        outcome = _Outcome()
        try:
            yield outcome
        finally:
            self.metrics.generated_tokens.labels(model).inc(outcome.produced)
            self.metrics.requests.labels(model, "Chat", outcome.code(context)).inc()
            self.metrics.active_streams.labels(model).dec()
            with self._active_changed:
                self._active -= 1
                self._active_changed.notify_all()

    def _check_accepting(self) -> None:
        if self.draining.is_set():
            raise RequestError(
                grpc.StatusCode.UNAVAILABLE, "the server is shutting down; retry on another"
            )

    def _abort(self, context, method: str, model: str, error: RequestError):
        self.metrics.requests.labels(model or "unknown", method, error.code.name).inc()
        context.abort(error.code, error.message)

    @contextmanager
    def _admitting(self, context, method: str, model: str):
        """Turn whatever goes wrong before the work starts into one status code."""
        try:
            yield
        except RequestError as error:
            self._abort(context, method, model, error)
        except QueueFullError as error:
            self._abort(
                context,
                method,
                model,
                RequestError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{error}; retry later"),
            )
        except EngineStoppedError:
            self._abort(
                context,
                method,
                model,
                RequestError(grpc.StatusCode.UNAVAILABLE, "the server is shutting down; retry"),
            )

    # RPCs ------------------------------------------------------------------------------

    def Chat(self, request: chat_pb2.ChatRequest, context) -> Iterator[chat_pb2.ChatEvent]:
        received = time.perf_counter()
        request_id = request.request_id or uuid.uuid4().hex
        with self._admitting(context, "Chat", request.model):
            self._check_accepting()
            loaded = self.models.get(request.model)
            chat = validate_chat(request, loaded.context_length)
            if request.rag.enabled:
                raise RequestError(
                    grpc.StatusCode.NOT_FOUND,
                    "rag: this server has no retrieval collection; start it with a collection "
                    "or send rag.enabled=false",
                )
            prompt_ids = loaded.codec.encode_chat(chat.messages)
            sampling = fit_to_context(chat, len(prompt_ids), loaded.context_length)
            generation = loaded.engine.submit(prompt_ids, sampling, loaded.adapter)

        name = loaded.name
        if not context.add_callback(generation.cancel):
            generation.cancel()  # the call ended before the callback could be registered
        with self._stream(name, context) as outcome:
            yield chat_pb2.ChatEvent(
                started=chat_pb2.Started(
                    request_id=request_id, model=name, prompt_tokens=len(prompt_ids)
                )
            )
            detokenizer = IncrementalDetokenizer(loaded.codec)
            stops = StopMatcher(chat.stop)
            pending_tokens = 0
            first_at = last_at = None
            for token in generation:
                now = time.perf_counter()
                if last_at is not None:
                    self.metrics.inter_token_latency.labels(name).observe(now - last_at)
                last_at = now
                outcome.produced += 1
                pending_tokens += 1
                text = stops.feed(detokenizer.add(token))
                if stops.stopped:
                    generation.cancel()
                if text:
                    if first_at is None:
                        first_at = now
                        self.metrics.time_to_first_token.labels(name).observe(now - received)
                    yield chat_pb2.ChatEvent(
                        delta=chat_pb2.Delta(text=text, token_count=pending_tokens)
                    )
                    pending_tokens = 0
                if stops.stopped:
                    break
            tail = "" if stops.stopped else stops.feed(detokenizer.flush()) + stops.flush()
            if tail:
                yield chat_pb2.ChatEvent(
                    delta=chat_pb2.Delta(text=tail, token_count=pending_tokens)
                )
            produced = outcome.produced
            outcome.reason = reason = (
                chat_pb2.STOP_SEQUENCE
                if stops.stopped
                else _FINISH[generation.finish_reason or FinishReason.CANCELLED]
            )
            decode_time = (last_at - first_at) if first_at and last_at else 0.0
            usage = chat_pb2.Usage(
                prompt_tokens=len(prompt_ids),
                completion_tokens=produced,
                time_to_first_token_ms=((first_at or time.perf_counter()) - received) * 1000,
                tokens_per_second=(produced - 1) / decode_time if decode_time > 0 else 0.0,
            )
            yield chat_pb2.ChatEvent(finished=chat_pb2.Finished(finish_reason=reason, usage=usage))

    def ListModels(self, request, context) -> chat_pb2.ListModelsResponse:
        try:
            self._check_accepting()
            self.models.get("")
        except RequestError as error:
            self._abort(context, "ListModels", "", error)
        cards = [
            build_card(m, is_default=m.name == self.models.default, full=False)
            for m in self.models.models.values()
        ]
        self.metrics.requests.labels("", "ListModels", "OK").inc()
        return chat_pb2.ListModelsResponse(models=cards, default_model=self.models.default)

    def GetModel(self, request: chat_pb2.GetModelRequest, context) -> chat_pb2.ModelCard:
        try:
            self._check_accepting()
            loaded = self.models.get(request.name)
        except RequestError as error:
            self._abort(context, "GetModel", request.name, error)
        self.metrics.requests.labels(loaded.name, "GetModel", "OK").inc()
        return build_card(loaded, is_default=loaded.name == self.models.default, full=True)

    def Score(self, request: chat_pb2.ScoreRequest, context) -> chat_pb2.ScoreResponse:
        with self._admitting(context, "Score", request.model):
            self._check_accepting()
            loaded = self.models.get(request.model)
            score = validate_score(request)
            context_ids = encode_score_context(loaded, score)
            continuations = [loaded.codec.encode(text) for text in score.continuations]
            longest = len(context_ids) + max(len(c) for c in continuations)
            if longest > loaded.context_length:
                raise invalid(
                    f"continuations: context plus the longest continuation is {longest} tokens, "
                    f"beyond the model's context of {loaded.context_length}; send shorter texts"
                )
            scoring = loaded.engine.submit_score(context_ids, continuations, loaded.adapter)
        with self._admitting(context, "Score", loaded.name):
            try:
                scores = scoring.result(timeout=context.time_remaining())
            except TimeoutError:
                raise RequestError(
                    grpc.StatusCode.DEADLINE_EXCEEDED, "scoring did not finish before the deadline"
                ) from None
        self.metrics.requests.labels(loaded.name, "Score", "OK").inc()
        return chat_pb2.ScoreResponse(
            model=loaded.name,
            context_tokens=len(context_ids),
            scores=[
                chat_pb2.ContinuationScore(logprob=s.logprob, tokens=s.tokens, greedy=s.greedy)
                for s in scores
            ],
        )

    def RecordEval(self, request: chat_pb2.RecordEvalRequest, context):
        with self._admitting(context, "RecordEval", request.model):
            self._check_accepting()
            loaded = self.models.get(request.model)
            validate_eval_record(request)
            folder = Path(loaded.path)
            if not folder.is_dir():
                raise RequestError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"model `{loaded.name}` was loaded from {loaded.path}, not a local checkpoint "
                    "folder, so it has no evals/ folder; keep the results file instead",
                )
        path = record_eval(folder, request.name, request.results_json)
        self.metrics.requests.labels(loaded.name, "RecordEval", "OK").inc()
        return chat_pb2.RecordEvalResponse(path=str(path))


@dataclass
class _Outcome:
    produced: int = 0
    reason: int | None = None  # set once the finished event is built

    def code(self, context) -> str:
        if self.reason not in (None, chat_pb2.CANCELLED):
            return "OK"
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            return "DEADLINE_EXCEEDED"
        return "CANCELLED"
