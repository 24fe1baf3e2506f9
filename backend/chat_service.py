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
- Chat runs one pipeline, in this order: validate -> input guardrails -> retrieve ->
  drop flagged chunks -> citations and prompt with sources -> cache lookup -> generate ->
  output guardrails -> cache store. A blocked input never reaches the tokenizer; the
  cache sits after the guardrails, so it stores and replays only what was safe to send.
- Retrieval is three calls here (the code lives in backend/retrieval/): `for_chat`
  validates the rag options with the request, `search` runs on the screened last user
  message, and `augment` builds the prompt with numbered sources and the citations event,
  which follows `started` (and any guardrail events) before any text. The cache key holds
  the augmented prompt and the collection's version, so a re-ingest invalidates it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import grpc

from backend.detokenize import IncrementalDetokenizer, StopMatcher
from backend.engine import EngineStoppedError, FinishReason, QueueFullError
from backend.guardrails import Guard, Policy, Verdict
from backend.logprobs import start_token_id
from backend.metrics import ServerMetrics
from backend.model_card import build_card, record_eval
from backend.model_loader import LoadedModel
from backend.response_cache import (
    CacheConfig,
    CachedReply,
    ResponseCache,
    cache_key,
    is_deterministic,
)
from backend.retrieval.augment import augment
from backend.retrieval.collections import CollectionSet, RetrievedSources
from backend.validation import (
    RequestError,
    ValidScore,
    fit_to_context,
    invalid,
    validate_chat,
    validate_eval_record,
    validate_score,
    validate_text,
)
from chat.v1 import chat_pb2, chat_pb2_grpc

_FINISH = {
    FinishReason.STOP: chat_pb2.STOP,
    FinishReason.LENGTH: chat_pb2.LENGTH,
    FinishReason.CANCELLED: chat_pb2.CANCELLED,
}
_CACHEABLE = (chat_pb2.STOP, chat_pb2.LENGTH, chat_pb2.STOP_SEQUENCE)
_ACTIONS = {
    "allow": chat_pb2.ALLOW,
    "flag": chat_pb2.FLAG,
    "redact": chat_pb2.REDACT,
    "block": chat_pb2.BLOCK,
}
STAGES = ("input", "retrieval", "output")


def guardrail_event(verdict: Verdict, source: str = "") -> chat_pb2.ChatEvent:
    """A guardrail finding as a stream event; for a dropped retrieved chunk, `source` names
    it (path#anchor), so a reader sees which source was left out and why."""
    return chat_pb2.ChatEvent(
        guardrail=chat_pb2.GuardrailEvent(
            action=_ACTIONS[verdict.action],
            category=verdict.category,
            reason=verdict.reason,
            stage=verdict.stage,
            score=verdict.score,
            source=source,
        )
    )


def _finished(reason: int, usage: chat_pb2.Usage) -> chat_pb2.ChatEvent:
    return chat_pb2.ChatEvent(finished=chat_pb2.Finished(finish_reason=reason, usage=usage))


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
    def __init__(
        self,
        models: ModelSet,
        metrics: ServerMetrics,
        guard: Guard | None = None,
        cache: ResponseCache | None = None,
        collections: CollectionSet | None = None,
    ) -> None:
        self.models = models
        self.metrics = metrics
        self.guard = guard or Guard(Policy(), metrics=metrics)
        self.cache = cache if cache is not None else ResponseCache(CacheConfig())
        self.collections = collections if collections is not None else CollectionSet()
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
        prompt_ids: list[int] = []
        cache_key = replay = generation = None
        with self._admitting(context, "Chat", request.model):
            self._check_accepting()
            loaded = self.models.get(request.model)
            chat = validate_chat(request, loaded.context_length)
            retrieval = self.collections.for_chat(request.rag)  # None when rag is off
            screen = self.guard.screen_input(chat.messages)
            if not screen.blocked:
                found = retrieval.search(screen.messages) if retrieval else None
                found, dropped = self._drop_flagged_chunks(found)
                rag = augment(screen.messages, found)
                prompt_ids = loaded.codec.encode_chat(rag.messages)
                sampling = fit_to_context(chat, len(prompt_ids), loaded.context_length)
                cache_key, replay = self._cache_lookup(
                    loaded.name, rag.messages, sampling, chat.stop, rag.collection_version
                )
                if replay is None:
                    generation = loaded.engine.submit(prompt_ids, sampling, loaded.adapter)

        name = loaded.name
        if generation is not None and not context.add_callback(generation.cancel):
            generation.cancel()  # the call ended before the callback could be registered
        with self._stream(name, context) as outcome:
            yield chat_pb2.ChatEvent(
                started=chat_pb2.Started(
                    request_id=request_id, model=name, prompt_tokens=len(prompt_ids)
                )
            )
            for verdict in screen.verdicts:
                yield guardrail_event(verdict)
            if screen.blocked:
                outcome.reason = chat_pb2.BLOCKED
                yield chat_pb2.ChatEvent(
                    delta=chat_pb2.Delta(text=self.guard.policy.messages.blocked, token_count=0)
                )
                yield _finished(chat_pb2.BLOCKED, chat_pb2.Usage())
                return
            for verdict, source in dropped:
                yield guardrail_event(verdict, source)
            if rag.citations is not None:
                yield chat_pb2.ChatEvent(citations=rag.citations)
            if replay is not None:
                yield from self._replay(replay, len(prompt_ids), received, outcome)
                return
            recorded: list[bytes] = []
            # The user's own system prompts are the secrets; the server's RAG instruction
            # is public, and a reply that quotes it is no leak.
            output = self.guard.output_guard(screen.messages)
            for event in self._generate(loaded, generation, chat, output, received, outcome):
                if cache_key is not None and not event.HasField("finished"):
                    recorded.append(event.SerializeToString())
                yield event
            if cache_key is not None and outcome.reason in _CACHEABLE:
                self.cache.put(
                    cache_key, CachedReply(tuple(recorded), outcome.reason, outcome.produced)
                )

    def _drop_flagged_chunks(
        self, found: RetrievedSources | None
    ) -> tuple[RetrievedSources | None, list[tuple[Verdict, str]]]:
        """Retrieved chunks the retrieval guardrail blocks never reach the prompt; its
        findings (blocked or flagged) become guardrail events, each with its chunk's
        path#anchor."""
        if found is None:
            return None, []
        drops = self.guard.check_chunks([s.chunk.indexed_text for s in found.sources])
        blocked = {d.index for d in drops if d.verdict.action == "block"}
        kept = [s for i, s in enumerate(found.sources) if i not in blocked]
        findings = []
        for drop in drops:
            chunk = found.sources[drop.index].chunk
            where = f"{chunk.source_path}#{chunk.anchor}" if chunk.anchor else chunk.source_path
            findings.append((drop.verdict, where))
        return replace(found, sources=kept), findings

    def _cache_lookup(self, model, messages, sampling, stop, collection_version):
        """(key, stored reply): key None when the request is not cacheable."""
        if not (self.cache.enabled and is_deterministic(sampling)):
            return None, None
        key = cache_key(model, messages, sampling, stop, collection_version)
        replay = self.cache.get(key)
        counter = self.metrics.cache_misses if replay is None else self.metrics.cache_hits
        counter.labels(model).inc()
        return key, replay

    def _replay(self, reply: CachedReply, prompt_tokens: int, received: float, outcome):
        for raw in reply.events:
            yield chat_pb2.ChatEvent.FromString(raw)
        outcome.reason = reply.finish_reason
        usage = chat_pb2.Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=reply.completion_tokens,
            time_to_first_token_ms=(time.perf_counter() - received) * 1000,
            cached=True,
        )
        yield _finished(reply.finish_reason, usage)

    def _generate(self, loaded, generation, chat, output, received, outcome):
        """The model's reply as events: deltas through the output guardrails, then
        `finished`. Sets `outcome.produced` and `outcome.reason`."""
        name = loaded.name
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
            text, verdicts = output.feed(text)
            yield from map(guardrail_event, verdicts)
            if output.blocked:
                generation.cancel()
                break
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
        tail = ""
        if not output.blocked:
            if not stops.stopped:
                tail = stops.feed(detokenizer.flush()) + stops.flush()
            tail, verdicts = output.feed(tail)
            rest, more = output.finish()
            tail += rest
            yield from map(guardrail_event, verdicts + more)
        if tail and not output.blocked:
            yield chat_pb2.ChatEvent(delta=chat_pb2.Delta(text=tail, token_count=pending_tokens))
        produced = outcome.produced
        if output.blocked:
            outcome.reason = reason = chat_pb2.BLOCKED
        elif stops.stopped:
            outcome.reason = reason = chat_pb2.STOP_SEQUENCE
        else:
            outcome.reason = reason = _FINISH[generation.finish_reason or FinishReason.CANCELLED]
        decode_time = (last_at - first_at) if first_at and last_at else 0.0
        usage = chat_pb2.Usage(
            prompt_tokens=len(generation.prompt_ids),
            completion_tokens=produced,
            time_to_first_token_ms=((first_at or time.perf_counter()) - received) * 1000,
            tokens_per_second=(produced - 1) / decode_time if decode_time > 0 else 0.0,
        )
        yield _finished(reason, usage)

    def CheckText(self, request: chat_pb2.CheckTextRequest, context) -> chat_pb2.GuardrailVerdict:
        with self._admitting(context, "CheckText", ""):
            self._check_accepting()
            self.models.get("")  # ready: the guard's classifier loads with the models
            stage = request.stage or "input"
            if stage not in STAGES:
                raise invalid(f"stage: unknown stage {stage!r}; use one of {', '.join(STAGES)}")
            validate_text(request.text, "text")
        verdict = self.guard.check_text(request.text, stage)
        self.metrics.requests.labels("", "CheckText", "OK").inc()
        return chat_pb2.GuardrailVerdict(
            action=_ACTIONS[verdict.action],
            category=verdict.category,
            score=verdict.score,
            reason=verdict.reason,
            redacted_text=verdict.redacted_text,
        )

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

    def Retrieve(self, request: chat_pb2.RetrieveRequest, context) -> chat_pb2.RetrieveResponse:
        with self._admitting(context, "Retrieve", ""):
            self._check_accepting()
            found = self.collections.retrieve(request)
        self.metrics.requests.labels("", "Retrieve", "OK").inc()
        return chat_pb2.RetrieveResponse(
            chunks=[
                chat_pb2.Chunk(
                    source_path=source.chunk.source_path,
                    title=source.chunk.heading,
                    anchor=source.chunk.anchor,
                    text=source.chunk.text,
                    score=source.score,
                )
                for source in found.sources
            ]
        )

    def ListCollections(self, request, context) -> chat_pb2.ListCollectionsResponse:
        with self._admitting(context, "ListCollections", ""):
            self._check_accepting()
            collections = self.collections.describe()
        self.metrics.requests.labels("", "ListCollections", "OK").inc()
        return chat_pb2.ListCollectionsResponse(collections=collections)


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
