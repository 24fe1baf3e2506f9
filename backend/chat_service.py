"""The ChatService: validation, orchestration and streaming, one asyncio task per call.

Design decisions:
- This is the only layer that knows both the chat format and the transport: it validates
  the request, applies the model's chat template, hands token ids to the model's engine
  and turns the ids that come back into text deltas (never splitting a UTF-8 character)
  and stop-string cuts.
- Every handler is a coroutine (Chat an async generator over `generation.stream()`) on the
  server's event loop, so an open stream holds no thread while it waits for tokens, and a
  health check or ListModels is answered between two tokens of 128 open streams.
- The CPU-bound steps that take milliseconds (guardrail checks, retrieval embedding and
  search, tokenisation of long prompts, card and index files) run in a small bounded pool
  (`workers`), one hop per call, so they never stall the loop for every other stream; the
  per-token work of a stream (detokenise, stop strings, output guard) is microseconds and
  stays on the loop, where a thread hop would cost more than it saves. Measured on the
  shared 2-core CPU: a hop costs about 50 us; screening and tokenising a 4,000-character
  message 23 ms, a 30,000-character one 180 ms; the output guard 5 us per token. The
  pool is bounded because more threads than cores only compete with the engine. A call
  cancelled while its admission runs in the pool cancels the generation it submitted.
- Every RPC runs inside `_rpc`, the one place that maps what went wrong to a gRPC status
  code (a `RequestError` before the work, a full queue, a stopped or failed engine, a
  malformed request, a bug): OK, the error's code, or CANCELLED/DEADLINE_EXCEEDED when the
  client went away. It runs the call under a `CallRecord` (backend/call_record.py): the
  request id (the client's or a new one) goes into the response metadata, `Started`, the
  error message and every log line; the caller's trace context is current; and when the
  call ends the record writes its one log line, its metrics and its span's GenAI
  attributes. The CPU pool runs each step in a copy of the caller's context, so what it
  logs and traces belongs to the same request.
 An engine failure mid-stream ends the stream with INTERNAL naming the
  request id, never CANCELLED.
- A client that cancels, or whose deadline passes, cancels the handler's task; the
  stream's `finally` cancels the engine request, which stops within one decode step.
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
- RunEval resolves the model and relays what `EvalRuns` (backend/eval_runs.py) streams
  from the eval run's child process; the server runs no eval code. Eval runs are not
  counted as active streams, so a drain does not wait minutes for a suite: the child's
  calls are refused like any other, and the server's stop cancels the call, which stops
  the child. GetEvalRows reads a page of one results file
  (backend/eval_files.py) on the CPU pool.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc

from backend import eval_files
from backend.call_record import REQUEST_ID_HEADER, CallRecord, request_id_of
from backend.detokenize import IncrementalDetokenizer, StopMatcher
from backend.engine import (
    EngineError,
    EngineStoppedError,
    FinishReason,
    Generation,
    QueueFullError,
    RequestTooLargeError,
    Scoring,
)
from backend.eval_runs import EvalRuns
from backend.guardrails import Guard, InputScreen, Policy, Verdict
from backend.logprobs import start_token_id
from backend.metrics import ServerMetrics
from backend.model_card import build_card, record_eval
from backend.model_loader import LoadedModel
from backend.model_reload import ModelReloader
from backend.response_cache import (
    CacheConfig,
    CachedReply,
    ResponseCache,
    cache_key,
    is_deterministic,
)
from backend.retrieval.augment import Augmented, augment
from backend.retrieval.collections import ChatRetrieval, CollectionSet, RetrievedSources
from backend.validation import (
    RequestError,
    ValidChat,
    ValidScore,
    fit_to_context,
    invalid,
    validate_chat,
    validate_eval_record,
    validate_score,
    validate_text,
)
from chat.v1 import chat_pb2, chat_pb2_grpc
from telemetry.logs import log_context
from telemetry.tracing import attach_remote, detach

log = logging.getLogger("chatforge.server")
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
        workers: int = 4,
    ) -> None:
        self.models = models
        self.metrics = metrics
        self.guard = guard or Guard(Policy(), metrics=metrics)
        self.cache = cache if cache is not None else ResponseCache(CacheConfig())
        self.collections = collections if collections is not None else CollectionSet()
        self.draining = False
        self.reloader: ModelReloader | None = None  # set once the first models are loaded
        self.eval_runs: EvalRuns | None = None  # set by the server, which knows its socket
        # Threads start on first use; a handful is enough: each step takes milliseconds
        # and the CPUs are shared with the engine's forward passes anyway.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc-cpu")
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # Lifecycle -------------------------------------------------------------------------

    @property
    def active_streams(self) -> int:
        return self._active

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no stream is active; False if the timeout passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    @asynccontextmanager
    async def _stream(self, model: str, call: _ChatCall) -> AsyncIterator[None]:
        """Track one active stream and count its tokens however it ends; a client gone
        mid-stream cancels the engine request (a no-op once it has finished)."""
        self._active += 1
        self._idle.clear()
        self.metrics.active_streams.labels(model).inc()
        try:
            yield
        finally:
            if call.generation is not None:
                call.generation.cancel()
            self.metrics.generation_tokens.labels(model).inc(call.produced)
            self.metrics.active_streams.labels(model).dec()
            self._active -= 1
            if self._active == 0:
                self._idle.set()

    def _check_accepting(self) -> None:
        if self.draining:
            raise RequestError(
                grpc.StatusCode.UNAVAILABLE, "the server is shutting down; retry on another"
            )

    @asynccontextmanager
    async def _rpc(
        self, context, method: str, model: str = "", requested_id: str = ""
    ) -> AsyncIterator[CallRecord]:
        """Run one RPC under its record: whatever goes wrong becomes one status code, a
        client that went away counts CANCELLED or DEADLINE_EXCEEDED, and the record is
        closed (log line, metrics) before the status leaves (`abort` sends it at once),
        so a client that reads the metrics next sees its own call."""
        metadata = context.invocation_metadata() or ()
        token = attach_remote(metadata)
        record = CallRecord(
            method,
            request_id_of(metadata, requested_id),
            context.peer(),
            self.metrics,
            model=model,
            # A context that is not grpc's (the HTTP API's) names its API.
            api=getattr(context, "api", "grpc"),
        )
        finalised = False  # closed by the loop's async-generator finaliser, in its context
        try:
            with log_context(request_id=record.request_id):
                await context.send_initial_metadata([(REQUEST_ID_HEADER, record.request_id)])
                try:
                    yield record
                except (asyncio.CancelledError, GeneratorExit) as exc:
                    finalised = isinstance(exc, GeneratorExit)
                    remaining = context.time_remaining()
                    expired = remaining is not None and remaining <= 0
                    record.code = "DEADLINE_EXCEEDED" if expired else "CANCELLED"
                    record.close()
                    raise
                except Exception as exc:  # noqa: BLE001 - every failure must reach the client as a status
                    error = status_of(exc)
                    message = record.fail(error.code.name, error.message)
                    if not isinstance(exc, (*_CLIENT_SIDE, EngineError)):  # a bug: traceback
                        log.error("%s failed", method, exc_info=exc)
                    record.close()
                    await context.abort(error.code, message)
                else:
                    record.close()
        finally:
            # A stream abandoned without `aclose` is closed from another context, where the
            # trace token was never set (detaching there logs a traceback); the call's own
            # context, token included, is discarded with its task.
            if not finalised:
                detach(token)

    async def _in_pool(self, fn, *args, abandon=None):
        """`fn(*args)` on the CPU pool. If the call is cancelled meanwhile, `abandon` gets
        the result once it is ready (to cancel a generation nobody will read)."""
        # The caller's context (request id, span) travels with the work into the pool.
        work = self._pool.submit(contextvars.copy_context().run, fn, *args)
        try:
            return await asyncio.wrap_future(work)
        except asyncio.CancelledError:
            if abandon is not None:
                work.add_done_callback(functools.partial(_release, abandon))
            raise

    async def reject(self, context, method: str, error: RequestError) -> None:
        """End a call that never reached its handler (a request that could not be
        decoded) through the same status, log and metrics path as every other error."""
        async with self._rpc(context, method):
            raise error

    # RPCs ------------------------------------------------------------------------------

    async def Chat(
        self, request: chat_pb2.ChatRequest, context
    ) -> AsyncIterator[chat_pb2.ChatEvent]:
        async with self._rpc(context, "Chat", request.model, request.request_id) as record:
            record.request = request
            self._check_accepting()
            loaded = self.models.get(request.model)
            record.model, record.adapter = loaded.name, loaded.adapter
            call = await self._in_pool(
                self._admit_chat, loaded, request, record, abandon=_ChatCall.cancel
            )
            async with self._stream(loaded.name, call):
                async for event in self._events(loaded, call, record):
                    yield event
            if call.reason == chat_pb2.CANCELLED:
                record.code = "CANCELLED"

    def _admit_chat(self, loaded: LoadedModel, request, record: CallRecord) -> _ChatCall:
        """Everything before the first event, on the CPU pool: validate, screen, retrieve,
        build and tokenise the prompt, look the reply up in the cache or submit it."""
        chat = validate_chat(request, loaded.context_length, loaded.spec.sampling.config())
        record.messages = chat.messages
        retrieval = self.collections.for_chat(request.rag)  # None when rag is off
        with record.stage("guardrails.input"):
            screen = self.guard.screen_input(chat.messages, loaded.name)
        record.verdicts(screen.verdicts)
        call = _ChatCall(chat, screen)
        if screen.blocked:
            return call
        found = self._retrieve(retrieval, screen.messages, record)
        with record.stage("guardrails.retrieval"):
            found, call.dropped = self._drop_flagged_chunks(found, loaded.name)
        record.verdicts(verdict for verdict, _ in call.dropped)
        call.rag = augment(screen.messages, found)
        call.prompt_ids = loaded.codec.encode_chat(call.rag.messages)
        record.prompt_tokens = len(call.prompt_ids)
        sampling = fit_to_context(chat, len(call.prompt_ids), loaded.context_length)
        call.cache_key, call.replay = self._cache_lookup(
            loaded.name, call.rag.messages, sampling, chat.stop, call.rag.collection_version
        )
        record.cache_hit = None if call.cache_key is None else call.replay is not None
        if call.replay is None:
            record.submitted = time.perf_counter()
            call.generation = loaded.engine.submit(
                call.prompt_ids, sampling, loaded.adapter, record.request_id
            )
            record.generation = call.generation
        return call

    def _retrieve(
        self, retrieval: ChatRetrieval | None, messages, record: CallRecord
    ) -> RetrievedSources | None:
        """Search the collection (a span with embed, search and fuse inside, and the
        retrieval latency metric); None when the call asked for no retrieval."""
        if retrieval is None:
            return None
        record.rag_collection = retrieval.collection.name
        record.rag_k = retrieval.params.k
        with record.stage("retrieval", **{"chatforge.collection": record.rag_collection}):
            started = time.perf_counter()
            found = retrieval.search(messages)
            elapsed = time.perf_counter() - started
        self.metrics.retrieval_latency.labels(record.model, record.rag_collection).observe(elapsed)
        return found

    async def _events(
        self, loaded: LoadedModel, call: _ChatCall, record: CallRecord
    ) -> AsyncIterator[chat_pb2.ChatEvent]:
        """The stream of one admitted call: started, guardrail findings, citations, then
        the reply (replayed from the cache or generated) and `finished`."""
        screen = call.screen
        yield chat_pb2.ChatEvent(
            started=chat_pb2.Started(
                request_id=record.request_id,
                model=loaded.name,
                prompt_tokens=len(call.prompt_ids),
            )
        )
        for verdict in screen.verdicts:
            yield guardrail_event(verdict)
        if screen.blocked:
            call.reason = chat_pb2.BLOCKED
            yield chat_pb2.ChatEvent(
                delta=chat_pb2.Delta(text=self.guard.policy.messages.blocked, token_count=0)
            )
            yield _finish(record, _finished(chat_pb2.BLOCKED, chat_pb2.Usage()))
            return
        for verdict, source in call.dropped:
            yield guardrail_event(verdict, source)
        if call.rag.citations is not None:
            yield chat_pb2.ChatEvent(citations=call.rag.citations)
        if call.replay is not None:
            for event in self._replay(call, record):
                yield event
            return
        recorded: list[bytes] = []
        # The user's own system prompts are the secrets; the server's RAG instruction
        # is public, and a reply that quotes it is no leak.
        output = self.guard.output_guard(screen.messages, loaded.name)
        async for event in self._generate(loaded, call, output, record):
            if call.cache_key is not None and not event.HasField("finished"):
                recorded.append(event.SerializeToString())
            yield event
        if call.cache_key is not None and call.reason in _CACHEABLE:
            self.cache.put(call.cache_key, CachedReply(tuple(recorded), call.reason, call.produced))

    def _drop_flagged_chunks(
        self, found: RetrievedSources | None, model: str
    ) -> tuple[RetrievedSources | None, list[tuple[Verdict, str]]]:
        """Retrieved chunks the retrieval guardrail blocks never reach the prompt; its
        findings (blocked or flagged) become guardrail events, each with its chunk's
        path#anchor."""
        if found is None:
            return None, []
        drops = self.guard.check_chunks([s.chunk.indexed_text for s in found.sources], model)
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

    def _replay(self, call: _ChatCall, record: CallRecord) -> Iterator[chat_pb2.ChatEvent]:
        reply = call.replay
        for raw in reply.events:
            event = chat_pb2.ChatEvent.FromString(raw)
            record.answer.append(event.delta.text)
            yield event
        call.reason = reply.finish_reason
        usage = chat_pb2.Usage(
            prompt_tokens=len(call.prompt_ids),
            completion_tokens=reply.completion_tokens,
            time_to_first_token_ms=(time.perf_counter() - record.received) * 1000,
            cached=True,
        )
        yield _finish(record, _finished(reply.finish_reason, usage))

    async def _generate(
        self, loaded: LoadedModel, call: _ChatCall, output, record: CallRecord
    ) -> AsyncIterator[chat_pb2.ChatEvent]:
        """The model's reply as events: deltas through the output guardrails, then
        `finished`. Sets `call.produced` and `call.reason`."""
        name = loaded.name
        received = record.received
        generation = call.generation
        detokenizer = IncrementalDetokenizer(loaded.codec)
        stops = StopMatcher(call.chat.stop)
        pending_tokens = 0
        first_at = last_at = None
        async for token in generation.stream():
            now = time.perf_counter()
            if last_at is not None:
                self.metrics.inter_token_latency.labels(name).observe(now - last_at)
            last_at = now
            record.token(now)
            call.produced += 1
            pending_tokens += 1
            text = stops.feed(detokenizer.add(token))
            if stops.stopped:
                generation.cancel()
            text, verdicts = output.feed(text)
            record.verdicts(verdicts)
            for verdict in verdicts:
                yield guardrail_event(verdict)
            if output.blocked:
                generation.cancel()
                break
            if text:
                if first_at is None:
                    first_at = now
                    self.metrics.time_to_first_token.labels(name).observe(now - received)
                record.answer.append(text)
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
            record.verdicts(verdicts + more)
            for verdict in verdicts + more:
                yield guardrail_event(verdict)
        record.output_guard_seconds = output.seconds
        # The last tokens may end in a cut character that never becomes text: their count
        # still goes out, so a client's sum of token counts is the completion's.
        if (tail or pending_tokens) and not output.blocked:
            record.answer.append(tail)
            yield chat_pb2.ChatEvent(delta=chat_pb2.Delta(text=tail, token_count=pending_tokens))
        produced = call.produced
        if output.blocked:
            call.reason = reason = chat_pb2.BLOCKED
        elif stops.stopped:
            call.reason = reason = chat_pb2.STOP_SEQUENCE
        else:
            call.reason = reason = _FINISH[generation.finish_reason or FinishReason.CANCELLED]
        decode_time = (last_at - first_at) if first_at and last_at else 0.0
        usage = chat_pb2.Usage(
            prompt_tokens=len(generation.prompt_ids),
            completion_tokens=produced,
            time_to_first_token_ms=((first_at or time.perf_counter()) - received) * 1000,
            tokens_per_second=(produced - 1) / decode_time if decode_time > 0 else 0.0,
        )
        yield _finish(record, _finished(reason, usage))

    async def CheckText(
        self, request: chat_pb2.CheckTextRequest, context
    ) -> chat_pb2.GuardrailVerdict:
        async with self._rpc(context, "CheckText"):
            self._check_accepting()
            self.models.get("")  # ready: the guard's classifier loads with the models
            stage = request.stage or "input"
            if stage not in STAGES:
                raise invalid(f"stage: unknown stage {stage!r}; use one of {', '.join(STAGES)}")
            validate_text(request.text, "text")
            verdict = await self._in_pool(self.guard.check_text, request.text, stage)
            return chat_pb2.GuardrailVerdict(
                action=_ACTIONS[verdict.action],
                category=verdict.category,
                score=verdict.score,
                reason=verdict.reason,
                redacted_text=verdict.redacted_text,
            )

    async def ListModels(self, request, context) -> chat_pb2.ListModelsResponse:
        # On the loop, not the pool: summary cards are cheap, and this call must answer
        # at once however many streams are open.
        async with self._rpc(context, "ListModels"):
            self._check_accepting()
            self.models.get("")
            cards = [
                build_card(m, is_default=m.name == self.models.default, full=False)
                for m in self.models.models.values()
            ]
            return chat_pb2.ListModelsResponse(models=cards, default_model=self.models.default)

    async def GetModel(self, request: chat_pb2.GetModelRequest, context) -> chat_pb2.ModelCard:
        async with self._rpc(context, "GetModel", request.name) as record:
            self._check_accepting()
            loaded = self.models.get(request.name)
            record.model = loaded.name
            is_default = loaded.name == self.models.default
            # The full card reads the training curve and eval files from disk.
            return await self._in_pool(build_card, loaded, is_default, True)

    async def Score(self, request: chat_pb2.ScoreRequest, context) -> chat_pb2.ScoreResponse:
        async with self._rpc(context, "Score", request.model) as record:
            self._check_accepting()
            loaded = self.models.get(request.model)
            record.model = loaded.name
            context_ids, scoring = await self._in_pool(
                self._admit_score, loaded, request, record.request_id, abandon=_cancel_scoring
            )
            try:
                scores = await scoring.wait()
            finally:  # the client went away or its deadline passed: the engine drops it
                scoring.cancel()
            return chat_pb2.ScoreResponse(
                model=loaded.name,
                context_tokens=len(context_ids),
                scores=[
                    chat_pb2.ContinuationScore(logprob=s.logprob, tokens=s.tokens, greedy=s.greedy)
                    for s in scores
                ],
            )

    def _admit_score(self, loaded: LoadedModel, request, request_id: str):
        """Validate and tokenise a Score request and submit it; (context ids, handle)."""
        score = validate_score(request)
        context_ids = encode_score_context(loaded, score)
        continuations = [loaded.codec.encode(text) for text in score.continuations]
        longest = len(context_ids) + max(len(c) for c in continuations)
        if longest > loaded.context_length:
            raise invalid(
                f"continuations: context plus the longest continuation is {longest} tokens, "
                f"beyond the model's context of {loaded.context_length}; send shorter texts"
            )
        scoring = loaded.engine.submit_score(context_ids, continuations, loaded.adapter, request_id)
        return context_ids, scoring

    async def RecordEval(self, request: chat_pb2.RecordEvalRequest, context):
        async with self._rpc(context, "RecordEval", request.model) as record:
            self._check_accepting()
            loaded = self.models.get(request.model)
            record.model = loaded.name
            validate_eval_record(request)
            folder = Path(loaded.path)
            if not folder.is_dir():
                raise RequestError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"model `{loaded.name}` was loaded from {loaded.path}, not a local checkpoint "
                    "folder, so it has no evals/ folder; keep the results file instead",
                )
            path = await self._in_pool(record_eval, folder, request.name, request.results_json)
            return chat_pb2.RecordEvalResponse(path=str(path))

    async def RunEval(
        self, request: chat_pb2.RunEvalRequest, context
    ) -> AsyncIterator[chat_pb2.EvalProgress]:
        async with self._rpc(context, "RunEval", request.model) as record:
            self._check_accepting()
            if self.eval_runs is None:
                raise RequestError(grpc.StatusCode.UNIMPLEMENTED, "this server runs no evals")
            try:
                loaded = self.models.get(request.model)
            except RequestError as error:  # the model is a parameter of the run
                if error.code != grpc.StatusCode.NOT_FOUND:
                    raise
                raise invalid(error.message) from None
            record.model = loaded.name
            command = await self.eval_runs.command(request, loaded.name)
            async for progress in self.eval_runs.run(command, request.suite, loaded.name):
                yield progress

    async def GetEvalRows(
        self, request: chat_pb2.GetEvalRowsRequest, context
    ) -> chat_pb2.GetEvalRowsResponse:
        async with self._rpc(context, "GetEvalRows", request.model) as record:
            self._check_accepting()
            loaded = self.models.get(request.model)
            record.model = loaded.name
            page = await self._in_pool(
                eval_files.rows_page, Path(loaded.path), loaded.name, request.name,
                request.page_size, request.page_token,
            )  # fmt: skip
            return chat_pb2.GetEvalRowsResponse(
                rows_json=page.rows, total=page.total, next_page_token=page.next_token
            )

    async def ReloadModels(self, request, context) -> chat_pb2.ReloadModelsResponse:
        async with self._rpc(context, "ReloadModels"):
            self._check_accepting()
            if self.reloader is None:
                raise RequestError(
                    grpc.StatusCode.UNAVAILABLE, "the server is still loading its models; retry"
                )
            # Loading takes seconds to minutes: a thread of its own, not the small CPU pool.
            result = await asyncio.to_thread(self.reloader.reload)
            return chat_pb2.ReloadModelsResponse(
                added=result.added,
                removed=result.removed,
                reloaded=result.reloaded,
                unchanged=result.unchanged,
                errors=result.errors,
                default_model=result.default,
            )

    async def Retrieve(
        self, request: chat_pb2.RetrieveRequest, context
    ) -> chat_pb2.RetrieveResponse:
        async with self._rpc(context, "Retrieve") as record:
            self._check_accepting()
            with record.stage("retrieval"):
                found = await self._in_pool(self.collections.retrieve, request)
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

    async def ListCollections(self, request, context) -> chat_pb2.ListCollectionsResponse:
        async with self._rpc(context, "ListCollections"):
            self._check_accepting()
            # Describing a collection loads an index an ingest has just published.
            collections = await self._in_pool(self.collections.describe)
            return chat_pb2.ListCollectionsResponse(collections=collections)


# Failures that are no fault of the server: logged as a line, without a traceback.
def _cancel_scoring(admitted: tuple[list[int], Scoring]) -> None:
    admitted[1].cancel()


_CLIENT_SIDE = (RequestError, QueueFullError, EngineStoppedError, RequestTooLargeError)


def status_of(error: Exception) -> RequestError:
    """The status code and message a failure reaches the client with."""
    if isinstance(error, RequestError):
        return error
    if isinstance(error, QueueFullError):
        return RequestError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{error}; retry later")
    if isinstance(error, EngineStoppedError):
        return RequestError(grpc.StatusCode.UNAVAILABLE, "the server is shutting down; retry")
    if isinstance(error, RequestTooLargeError):  # says what the cache holds and what to do
        return RequestError(grpc.StatusCode.INVALID_ARGUMENT, str(error))
    if isinstance(error, EngineError):  # names the request id
        return RequestError(grpc.StatusCode.INTERNAL, str(error))
    return RequestError(
        grpc.StatusCode.INTERNAL,
        f"internal error ({type(error).__name__}); the server's log has the details",
    )


def _finish(record: CallRecord, event: chat_pb2.ChatEvent) -> chat_pb2.ChatEvent:
    """The `finished` event, noted in the call's record on its way out."""
    record.finished = event.finished
    return event


def _release(abandon, work: Future) -> None:
    if not work.cancelled() and work.exception() is None:
        abandon(work.result())


@dataclass
class _ChatCall:
    """One Chat call from admission to its last event."""

    chat: ValidChat
    screen: InputScreen
    dropped: list[tuple[Verdict, str]] = field(default_factory=list)
    rag: Augmented | None = None
    prompt_ids: list[int] = field(default_factory=list)
    cache_key: str | None = None
    replay: CachedReply | None = None
    generation: Generation | None = None
    produced: int = 0
    reason: int | None = None  # set once the finished event is built

    def cancel(self) -> None:
        if self.generation is not None:
            self.generation.cancel()
