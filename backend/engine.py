"""The engine: token ids in, token ids out; continuous batching over a paged KV cache.

Design decisions:
- One thread runs the step loop and is the only caller of the model's forward pass. Each
  step is one forward pass over every running sequence (one decode token each) plus chunks
  of waiting prompts, within a per-step token budget (`max_batch_tokens`): sequences join
  and leave between steps, and admitting a long prompt delays running streams by at most
  one chunk (continuous batching with chunked prefill, as vLLM and nano-vllm do).
- The model is reached through a runner (`ModelRunner`: `backend/paged_llama.py` for Llama
  checkpoints), built by the loader and handed in, so this module knows no architecture.
  The runner owns the preallocated KV cache; this module owns its bookkeeping: fixed-size
  blocks with reference counts (`BlockPool`), a block table per sequence, and the slots
  every step writes and reads.
- Memory grows with the sequence, as in vLLM: admission takes the blocks of the prompt
  (or of its first chunk), and a sequence takes a block each time it reaches one. When
  none is free, the newest running sequence is preempted: its blocks go back (published
  ones stay in the prefix cache), it waits first in line and recomputes when readmitted,
  and its stream only pauses. So the oldest sequence always progresses, and `max_tokens`
  costs nothing until it is used. A request that does not fit yet does not block the line:
  later ones that fit go ahead, until `max_batch_size` of them have passed it; then it
  holds the line until it fits, so it cannot starve. One that could never fit is refused
  at submit with the numbers.
- Prefix reuse by block keys: a full block is published under a BLAKE2 digest chained
  over every token before it (and the adapter, whose K/V differ), and a new sequence
  starts from the longest run of published blocks matching its tokens: the system prompt,
  the retrieval instruction, the previous turn of a conversation (generated blocks are
  published too). A digest, not Python's `hash`, because a colliding key would hand a
  sequence another prefix's K/V. Unreferenced published blocks stay cached and are
  evicted least recently used first.
- Whether answers depend on the batch is the runner's choice (`deterministic` in
  models.yaml: row-invariant products, several times slower at one stream); the engine's
  own part never depends on it: sampling is per row with a per-request `torch.Generator`
  (backend/sampling.py), and the repetition penalty reads a per-sequence presence mask.
- It knows nothing of chat formats, text, gRPC or HTTP. Stop strings are text, so the
  caller matches them and cancels; cancellation is checked before every step and frees
  the sequence's blocks at once.
- Failures: a failed step is retried row by row from the state before it (no sequence
  changes until its forward pass and sampling have succeeded; generator draws are
  undone), so only the request at fault ends, with `EngineError` naming its id, and the
  loop carries on. If the loop itself breaks, the engine refuses new work, ends every
  request with that error and calls `on_failure` (the server turns its health to
  NOT_SERVING): a stream never hangs on a dead thread.
- Scoring (log-likelihoods for evals) shares the scheduler: the context is computed once
  as a prefill-only sequence whose blocks are published, then every continuation is a
  sequence that reuses them, chunked under the same token budget as any prompt, so a
  `Score` never freezes running streams for more than one step.
"""

from __future__ import annotations

import array
import asyncio
import collections
import concurrent.futures
import enum
import functools
import hashlib
import itertools
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from backend.logprobs import ContinuationLogprob
from backend.sampling import SamplingConfig, make_generator, sample_rows

log = logging.getLogger("chatforge.engine")


class FinishReason(enum.Enum):
    STOP = "stop"  # an end-of-sequence token
    LENGTH = "length"  # max_tokens or the context length
    CANCELLED = "cancelled"


class QueueFullError(RuntimeError):
    """The engine's request queue is full; the caller should retry later."""

    def __init__(self, waiting: int) -> None:
        super().__init__(f"the request queue is full ({waiting} requests waiting)")
        self.waiting = waiting


class EngineStoppedError(RuntimeError):
    """The engine no longer accepts requests."""


class EngineError(RuntimeError):
    """A forward pass failed while serving this request (not the caller's fault)."""


@dataclass
class _Finished:
    reason: FinishReason
    error: BaseException | None = None


class _Channel:
    """Items from the engine thread to one consumer, read either by a thread (`get`) or by
    an asyncio task (`aget`): the engine wakes an event loop only through
    `call_soon_threadsafe`, so an open stream holds no thread while it waits."""

    def __init__(self) -> None:
        self._items: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._wake = None  # set by `aget`: wakes the waiting task on its loop

    def put(self, item) -> None:
        with self._lock:
            self._items.append(item)
            self._ready.notify()
            wake = self._wake
        if wake is not None:
            wake()

    def get(self):
        with self._ready:
            self._ready.wait_for(lambda: self._items)
            return self._items.popleft()

    async def aget(self):
        loop = asyncio.get_running_loop()
        while True:
            event = asyncio.Event()
            with self._lock:
                if self._items:
                    return self._items.popleft()
                self._wake = functools.partial(loop.call_soon_threadsafe, event.set)
            await event.wait()


@dataclass
class Generation:
    """A handle on one request: iterate it (`for`, or `async for` over `stream()`) for
    token ids, or cancel it. A failed forward pass raises `EngineError`."""

    request_id: str
    prompt_ids: list[int]
    config: SamplingConfig
    adapter: str | None = None
    _events: _Channel = field(default_factory=_Channel, repr=False)
    _cancelled: threading.Event = field(default_factory=threading.Event, repr=False)
    finish_reason: FinishReason | None = None
    queued_seconds: float | None = None  # submit to admission, once admitted
    cached_tokens: int = 0  # prompt tokens found in the prefix cache

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def push(self, token: int) -> None:
        """An engine hands the consumer one generated token id."""
        self._events.put(token)

    def close(self, reason: FinishReason, error: BaseException | None = None) -> None:
        """An engine ends the stream; `error` (a failed step) reaches the consumer as
        `EngineError`."""
        self._events.put(_Finished(reason, error))

    def _end(self, item: _Finished) -> None:
        self.finish_reason = item.reason
        if item.error is not None:
            raise EngineError(
                f"request {self.request_id}: the model failed while generating "
                f"({type(item.error).__name__}: {item.error})"
            ) from item.error

    def __iter__(self) -> Iterator[int]:
        while not isinstance(item := self._events.get(), _Finished):
            yield item
        self._end(item)

    async def stream(self) -> AsyncIterator[int]:
        while not isinstance(item := await self._events.aget(), _Finished):
            yield item
        self._end(item)


@dataclass
class Scoring:
    """A handle on one scoring request: wait for the continuations' log-likelihoods with
    `result()` (a thread) or `await scoring.wait()` (a task)."""

    context_ids: list[int]
    continuations: list[list[int]]
    adapter: str | None = None
    request_id: str = ""
    _future: concurrent.futures.Future = field(
        default_factory=concurrent.futures.Future, repr=False
    )
    _cancelled: threading.Event = field(default_factory=threading.Event, repr=False)

    def cancel(self) -> None:
        """Give up on the result (a deadline passed); the engine drops the work."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def result(self, timeout: float | None = None) -> list[ContinuationLogprob]:
        try:
            return self._future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError("scoring did not finish in time") from None

    async def wait(self) -> list[ContinuationLogprob]:
        return await asyncio.wrap_future(self._future)

    def _settle(self, result=None, error: BaseException | None = None) -> None:
        if isinstance(error, EngineStoppedError):
            self._future.set_exception(error)
        elif error is not None:
            failure = EngineError(
                f"request {self.request_id}: the model failed while scoring "
                f"({type(error).__name__}: {error})"
            )
            failure.__cause__ = error
            self._future.set_exception(failure)
        else:
            self._future.set_result(result)


class RequestTooLargeError(ValueError):
    """The request needs more KV cache than this engine has in all."""


# The step a runner executes ------------------------------------------------------------


@dataclass
class DecodeGroup:
    """Rows that each add one token to a sequence: one padded attention call."""

    rows: torch.Tensor  # [B] packed row of each sequence's token
    slots: torch.Tensor  # [B, L] cache slots of each sequence's context, padded
    mask: torch.Tensor  # [B, 1, 1, L] True where a slot belongs to that context


@dataclass
class PrefillChunk:
    """Consecutive tokens of one sequence: one causal attention call of their own."""

    start: int  # first packed row
    length: int
    slots: torch.Tensor  # [L] cache slots of the context up to the chunk's last token
    mask: torch.Tensor  # [length, L] a token sees the context up to itself


@dataclass
class StepBatch:
    token_ids: torch.Tensor  # [T] every scheduled token, packed
    positions: torch.Tensor  # [T]
    write_slots: torch.Tensor  # [T] where each token's K/V goes
    logits_rows: torch.Tensor  # [N] packed rows whose next-token logits are wanted
    decode: DecodeGroup | None
    prefills: list[PrefillChunk]
    adapters: list[str] | None = None  # per packed row, when the model holds adapters


class ModelRunner(Protocol):
    num_blocks: int
    block_size: int
    vocab_size: int
    device: torch.device

    def forward(self, batch: StepBatch) -> torch.Tensor: ...


@dataclass(frozen=True)
class EngineConfig:
    max_batch_size: int = 16  # sequences running at once
    max_batch_tokens: int = 256  # tokens per step: decode rows plus prefill chunks
    max_queue: int = 64  # requests waiting for admission
    prefix_cache: bool = True  # reuse published blocks of earlier prompts and answers


@dataclass(frozen=True)
class StepStats:
    """What one step did, for the metrics (the engine's only outward report)."""

    rows: int  # sequences in the step
    tokens: int  # tokens computed
    seconds: float
    running: int
    waiting: int
    kv_usage: float  # 0..1, blocks referenced by live sequences
    prefix_queried: int  # prompt tokens looked up in the prefix cache this step
    prefix_hits: int  # of those, tokens found
    queue_seconds: tuple[float, ...]  # of each request admitted this step


# KV blocks ---------------------------------------------------------------------------


def check_fits(tokens: int, cache_tokens: int | None) -> None:
    """Refuse a request that needs more KV cache than an engine has in all (None: the
    engine does not say)."""
    if cache_tokens is not None and tokens > cache_tokens:
        raise RequestTooLargeError(
            f"the request needs {tokens} tokens of KV cache and this model's cache holds "
            f"{cache_tokens}; send a shorter prompt or fewer max_tokens, or give the model a "
            "larger kv_cache_mb in models.yaml"
        )


def check_generation(
    prompt_ids: Sequence[int], config: SamplingConfig, context_length: int, cache_tokens: int | None
) -> int:
    """The checks every engine makes of a generation at submit; the most tokens it can
    reach (prompt plus max_tokens, within the context)."""
    if not prompt_ids:
        raise ValueError("a generation needs at least one prompt token")
    if len(prompt_ids) >= context_length:
        raise ValueError(
            f"the prompt has {len(prompt_ids)} tokens and the context {context_length}"
        )
    capacity = min(len(prompt_ids) + config.max_tokens, context_length)
    check_fits(capacity, cache_tokens)
    return capacity


class BlockPool:
    """Reference-counted KV blocks; published full blocks stay findable by their chain key
    until evicted, least recently used first, when a fresh block is needed."""

    def __init__(self, num_blocks: int) -> None:
        self.num_blocks = num_blocks
        self.refs = [0] * num_blocks
        self.key_of: list[bytes | None] = [None] * num_blocks
        self.tokens_of: list[tuple[int, ...]] = [()] * num_blocks
        self.by_key: dict[bytes, int] = {}
        self.plain: collections.deque[int] = collections.deque(range(num_blocks))
        self.cached: collections.OrderedDict[int, None] = collections.OrderedDict()

    @property
    def available(self) -> int:
        return len(self.plain) + len(self.cached)

    @property
    def in_use(self) -> int:
        return self.num_blocks - len(self.plain) - len(self.cached)

    def find(self, key: bytes, tokens: tuple[int, ...]) -> int | None:
        block = self.by_key.get(key)
        return block if block is not None and self.tokens_of[block] == tokens else None

    def share(self, block: int) -> None:
        if self.refs[block] == 0:
            del self.cached[block]
        self.refs[block] += 1

    def allocate(self) -> int:
        """A fresh block: a never-published one first, else the least recently used."""
        if self.plain:
            block = self.plain.popleft()
        else:
            block, _ = self.cached.popitem(last=False)
            key = self.key_of[block]
            if self.by_key.get(key) == block:
                del self.by_key[key]
            self.key_of[block], self.tokens_of[block] = None, ()
        self.refs[block] = 1
        return block

    def publish(self, block: int, key: bytes, tokens: tuple[int, ...]) -> None:
        if key not in self.by_key:
            self.by_key[key] = block
            self.key_of[block], self.tokens_of[block] = key, tokens

    def release(self, block: int) -> None:
        self.refs[block] -= 1
        if self.refs[block] == 0:
            if self.key_of[block] is None:
                self.plain.append(block)
            else:
                self.cached[block] = None  # most recently used last


def root_key(adapter: str | None) -> bytes:
    """The chain key before a sequence's first block: adapters' K/V differ, so do keys."""
    return hashlib.blake2b(repr(adapter).encode(), digest_size=16).digest()


def chain_key(parent: bytes, tokens: Sequence[int]) -> bytes:
    """A block's key: a cryptographic digest over its parent's key and its own tokens, so
    two different prefixes never share a key (Python's `hash` of a tuple may collide)."""
    return hashlib.blake2b(parent + array.array("q", tokens).tobytes(), digest_size=16).digest()


# Sequences -----------------------------------------------------------------------------


@dataclass(eq=False)
class _Seq:
    """One sequence in the scheduler: a generation, a scoring context or continuation."""

    tokens: list[int]
    adapter: str | None
    capacity: int  # most tokens it can reach (prompt plus max_tokens, within the context)
    logits_from: int  # first position whose next-token logits are wanted
    owner: Generation | _ScoreTask
    submitted: float
    blocks: list[int] = field(default_factory=list)
    slots: torch.Tensor | None = None  # cache slot of every position, filled per block
    computed: int = 0  # positions whose K/V are in the cache
    published: int = 0  # leading blocks published to the prefix cache
    chain: bytes = b""  # key of the last published block
    produced: int = 0
    generator: torch.Generator | None = None
    presence: torch.Tensor | None = None  # tokens seen, for the repetition penalty
    part: int = -1  # scoring: which continuation (-1: the shared context)
    logprob: float = 0.0  # scoring: running sum over the continuation
    greedy: bool = True
    passed_by: int = 0  # later requests admitted while this one did not fit

    @property
    def wanted_from(self) -> int:
        """The first position whose logits this sequence still needs: a prefix-cache hit
        may cover everything before it."""
        if isinstance(self.owner, Generation):
            return len(self.tokens) - 1
        return self.logits_from


@dataclass(eq=False)
class _ScoreTask:
    scoring: Scoring
    results: list[ContinuationLogprob | None]
    pending: int

    @property
    def cancelled(self) -> bool:
        return self.scoring.cancelled


@dataclass
class _Outcome:
    """What one step computed for one sequence, before any of it is recorded."""

    seq: _Seq
    tokens: int
    logprob: float = 0.0
    greedy: bool = True
    token: int | None = None  # a generation's sampled token


class Engine:
    """Owns one model runner and its KV cache; runs the step loop on a background thread."""

    supports_score = True

    def __init__(
        self,
        runner: ModelRunner,
        eos_token_ids: Sequence[int],
        context_length: int,
        config: EngineConfig = EngineConfig(),
        adapter_names: Sequence[str] = (),
        on_step: Callable[[StepStats], None] | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        if config.max_batch_tokens < config.max_batch_size:
            raise ValueError(
                f"max_batch_tokens ({config.max_batch_tokens}) must be at least "
                f"max_batch_size ({config.max_batch_size}): every running sequence needs "
                "one token of each step"
            )
        self.runner = runner
        self.config = config
        self.device = runner.device
        self.block_size = runner.block_size
        self.adapter_names = frozenset(adapter_names)
        self.eos_token_ids = frozenset(eos_token_ids)
        self.context_length = context_length
        self.on_step = on_step
        self.on_failure = on_failure
        self.failure: BaseException | None = None  # what stopped the step loop for good
        self.preemptions = 0
        self.pool = BlockPool(runner.num_blocks)
        self._incoming: collections.deque = collections.deque()
        self._waiting: collections.deque[_Seq] = collections.deque()
        self._running: list[_Seq] = []  # in order of admission: the newest is preempted first
        self._wakeup = threading.Condition()
        self._ids = itertools.count()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine", daemon=True)
        self._thread.start()

    # Submitting ------------------------------------------------------------------------

    def submit(
        self,
        prompt_ids: Sequence[int],
        config: SamplingConfig,
        adapter: str | None = None,
        request_id: str = "",
    ) -> Generation:
        """Queue a generation; `request_id` names it in errors (a serial number if empty)."""
        self._check_adapter(adapter)
        capacity = check_generation(
            prompt_ids, config, self.context_length, self.pool.num_blocks * self.block_size
        )
        request_id = request_id or str(next(self._ids))
        generation = Generation(request_id, list(prompt_ids), config, adapter)
        seq = _Seq(
            list(prompt_ids), adapter, capacity, len(prompt_ids) - 1, generation, time.monotonic()
        )
        self._enqueue(seq)
        return generation

    def submit_score(
        self,
        context_ids: Sequence[int],
        continuations: Sequence[Sequence[int]],
        adapter: str | None = None,
        request_id: str = "",
    ) -> Scoring:
        """Queue a scoring request; `result()` or `wait()` on the handle waits for it."""
        self._check_adapter(adapter)
        if not context_ids:
            raise ValueError("the context needs at least one token to predict the first one from")
        if not continuations or not all(continuations):
            raise ValueError("a continuation must have at least one token")
        request_id = request_id or str(next(self._ids))
        scoring = Scoring(list(context_ids), [list(c) for c in continuations], adapter, request_id)
        self._check_fits(len(context_ids) + max(len(c) for c in continuations))
        task = _ScoreTask(scoring, [None] * len(continuations), len(continuations))
        now = time.monotonic()
        if len(continuations) == 1:
            seqs = self._score_seqs(task, now)
        else:  # the context first, once; its published blocks serve every continuation
            context = list(context_ids)
            seqs = [_Seq(context, adapter, len(context), len(context), task, now)]
        self._enqueue(*seqs)
        return scoring

    def _score_seqs(self, task: _ScoreTask, now: float) -> list[_Seq]:
        scoring = task.scoring
        start = len(scoring.context_ids) - 1
        seqs = []
        for part, continuation in enumerate(scoring.continuations):
            ids = scoring.context_ids + continuation
            seqs.append(_Seq(ids, scoring.adapter, len(ids), start, task, now, part=part))
        return seqs

    def _check_adapter(self, adapter: str | None) -> None:
        if adapter is not None and adapter not in self.adapter_names:
            known = ", ".join(sorted(self.adapter_names)) or "none"
            raise ValueError(f"unknown adapter {adapter!r}; this engine has: {known}")

    def _check_fits(self, tokens: int) -> None:
        check_fits(tokens, self.pool.num_blocks * self.block_size)

    def _enqueue(self, *seqs: _Seq) -> None:
        with self._wakeup:
            if self.failure is not None:
                raise EngineStoppedError(
                    f"the engine failed and serves no more requests ({self.failure!r}); "
                    "the server reports NOT_SERVING until it is restarted"
                )
            if self._stopping.is_set():
                raise EngineStoppedError("the engine is shutting down")
            waiting = len(self._incoming) + len(self._waiting)
            if waiting >= self.config.max_queue:
                raise QueueFullError(waiting)
            self._incoming.extend(seqs)
            self._wakeup.notify()

    def generate(
        self, prompt_ids: Sequence[int], config: SamplingConfig, adapter: str | None = None
    ) -> list[int]:
        """Convenience: run one request to completion and return its ids."""
        return list(self.submit(prompt_ids, config, adapter))

    @property
    def waiting(self) -> int:
        return len(self._incoming) + len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._running)

    def stop(self) -> None:
        """Cancel everything and end the step loop."""
        with self._wakeup:
            self._stopping.set()
            self._wakeup.notify()
        self._thread.join(timeout=10)

    # The step loop ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # the loop itself broke: no request may hang on it
            log.exception("the engine's step loop failed; ending every request for good")
            self._fail_for_good(exc)

    def _loop(self) -> None:
        with torch.inference_mode():
            while True:
                with self._wakeup:
                    if not (self._running or self._waiting or self._incoming):
                        self._wakeup.wait_for(
                            lambda: self._incoming or self._stopping.is_set(), timeout=1.0
                        )
                    self._waiting.extend(self._incoming)
                    self._incoming.clear()
                if self._stopping.is_set():
                    self._end_all(EngineStoppedError("the engine stopped"))
                    return
                try:
                    self._drop_cancelled()
                    self._step()
                except Exception as exc:  # a bug here must end streams, not hang them
                    log.exception("engine step failed; ending every request in flight")
                    self._end_all(exc)

    def _fail_for_good(self, error: BaseException) -> None:
        """Refuse new work, then end every request one by one, each on its own: a request
        whose ending fails too must not keep the others waiting."""
        with self._wakeup:
            self.failure = error
            self._stopping.set()
            seqs = [*self._running, *self._waiting, *self._incoming]
            self._running, self._incoming = [], collections.deque()
            self._waiting.clear()
        for seq in seqs:
            try:
                owner = seq.owner
                if isinstance(owner, Generation):
                    owner.close(FinishReason.CANCELLED, error)
                elif not owner.scoring._future.done():
                    owner.scoring._settle(error=error)
            except Exception:
                log.exception("could not end request %s", _request_id(seq))
        if self.on_failure is not None:
            self.on_failure(error)

    def _end_all(self, error: BaseException) -> None:
        for seq in [*self._running, *self._waiting]:
            self._finish(seq, FinishReason.CANCELLED, error)
        self._running.clear()
        self._waiting.clear()

    def _drop_cancelled(self) -> None:
        for seq in [s for s in self._running if s.owner.cancelled]:
            self._running.remove(seq)
            self._finish(seq, FinishReason.CANCELLED)
        for seq in [s for s in self._waiting if s.owner.cancelled]:
            self._waiting.remove(seq)
            self._finish(seq, FinishReason.CANCELLED)

    def _step(self) -> None:
        started = time.monotonic()
        plan, admitted, queried, hits = self._schedule()
        if not plan:
            return
        try:
            self._run_plan(plan)
        except Exception as exc:  # a failed step fails its culprits, not the loop
            if len(plan) == 1:
                self._fail(plan[0][0], exc)
            else:  # retried one by one, so rows that were not at fault carry on
                for item in plan:
                    try:
                        self._run_plan([item])
                    except Exception as single:
                        self._fail(item[0], single)
        if self.on_step is not None:
            self.on_step(
                StepStats(
                    rows=len(plan),
                    tokens=sum(n for _, n in plan),
                    seconds=time.monotonic() - started,
                    running=len(self._running),
                    waiting=self.waiting,
                    kv_usage=self.pool.in_use / self.pool.num_blocks,
                    prefix_queried=queried,
                    prefix_hits=hits,
                    queue_seconds=tuple(started - s.submitted for s in admitted),
                )
            )

    def _run_plan(self, plan: list[tuple[_Seq, int]]) -> None:
        """One forward pass over `plan`, then its results recorded. Nothing about a
        sequence changes until the forward pass and the sampling have both succeeded, and
        the generators' draws are undone if they did not, so a retried row starts from the
        same state as the failed step did."""
        states = [(seq, seq.generator.get_state()) for seq, _ in plan if seq.generator]
        try:
            batch, wanted = self._build(plan)
            outcomes = self._compute(plan, wanted, self.runner.forward(batch))
        except Exception:
            for seq, state in states:
                seq.generator.set_state(state)
            raise
        self._record(outcomes)

    def _fail(self, seq: _Seq, error: BaseException) -> None:
        if seq in self._running:
            self._running.remove(seq)
        self._finish(seq, FinishReason.CANCELLED, error)

    # Scheduling ------------------------------------------------------------------------

    def _schedule(self) -> tuple[list[tuple[_Seq, int]], list[_Seq], int, int]:
        """This step's (sequence, tokens) pairs: every decoding sequence, then prefill
        chunks of running and newly admitted sequences, within the token budget. Blocks
        are allocated as a sequence reaches them; when none is left, the newest running
        sequence is preempted (vLLM's recompute preemption), so the oldest always
        progresses."""
        budget = self.config.max_batch_tokens
        plan: list[tuple[_Seq, int]] = []
        for seq in [s for s in self._running if len(s.tokens) - s.computed == 1]:
            if seq in self._running and self._grow(seq, seq.computed + 1, plan):
                plan.append((seq, 1))
                budget -= 1
        for seq in list(self._running):
            need = len(seq.tokens) - seq.computed
            if need > 1 and budget > 0 and seq in self._running:
                n = min(need, budget)
                if self._grow(seq, seq.computed + n, plan):
                    plan.append((seq, n))
                    budget -= n
        budget = self.config.max_batch_tokens - sum(n for _, n in plan)
        admitted: list[_Seq] = []
        queried = hits = 0
        passed: list[_Seq] = []  # waiting requests that did not fit, oldest first
        for seq in list(self._waiting):
            if len(self._running) >= self.config.max_batch_size or budget <= 0:
                break
            matched, chain = self._match(seq)
            n = min(len(seq.tokens) - len(matched) * self.block_size, budget)
            need = math.ceil((len(matched) * self.block_size + n) / self.block_size)
            need -= len(matched)
            revived = sum(1 for b in matched if self.pool.refs[b] == 0)
            if self.pool.available - revived < need:
                if seq.passed_by >= self.config.max_batch_size:
                    break  # passed over often enough: it holds the line until it fits
                passed.append(seq)
                continue
            for earlier in passed:
                earlier.passed_by += 1
            self._waiting.remove(seq)
            self._admit(seq, matched, chain)
            admitted.append(seq)
            queried += len(seq.tokens)
            hits += seq.computed
            if seq.computed == len(seq.tokens):  # a scoring context found whole in the cache
                self._finish(seq, FinishReason.STOP)
                continue
            self._running.append(seq)
            self._grow(seq, seq.computed + n, plan)
            plan.append((seq, n))
            budget -= n
        return plan, admitted, queried, hits

    def _grow(self, seq: _Seq, end: int, plan: list[tuple[_Seq, int]]) -> bool:
        """Blocks for `seq` up to position `end`, preempting newer sequences (and taking
        them out of `plan`) when none is free; False if `seq` itself was preempted."""
        while len(seq.blocks) * self.block_size < end:
            if self.pool.available == 0:
                victim = self._running[-1]
                self._preempt(victim)
                plan[:] = [(s, n) for s, n in plan if s is not victim]
                if victim is seq:
                    return False
                continue
            block = self.pool.allocate()
            self._fill_slots(seq, len(seq.blocks), block)
            seq.blocks.append(block)
        return True

    def _preempt(self, seq: _Seq) -> None:
        """Free a running sequence's blocks and put it first in line; it recomputes its
        tokens when readmitted (its published blocks usually come back from the prefix
        cache), and its stream just waits meanwhile."""
        self._running.remove(seq)
        for block in seq.blocks:
            self.pool.release(block)
        seq.blocks, seq.slots, seq.computed, seq.published = [], None, 0, 0
        seq.logprob, seq.greedy = 0.0, True  # a continuation's sum starts over
        self._waiting.appendleft(seq)
        self.preemptions += 1

    def _match(self, seq: _Seq) -> tuple[list[int], bytes]:
        """The longest run of published blocks matching the sequence's tokens (short of
        the position whose logits are wanted), and the chain key after it."""
        size = self.block_size
        root = root_key(seq.adapter)
        limit = seq.wanted_from // size if self.config.prefix_cache else 0
        matched, chain = [], root
        for index in range(limit):
            tokens = tuple(seq.tokens[index * size : (index + 1) * size])
            key = chain_key(chain, tokens)
            block = self.pool.find(key, tokens)
            if block is None:
                break
            matched.append(block)
            chain = key
        return matched, chain

    def _admit(self, seq: _Seq, matched: list[int], chain: bytes) -> None:
        """Take the matched blocks and set the sequence up to run."""
        size = self.block_size
        for block in matched:
            self.pool.share(block)
        seq.blocks = list(matched)
        seq.slots = torch.empty(seq.capacity, dtype=torch.long)
        for index, block in enumerate(matched):
            self._fill_slots(seq, index, block)
        seq.computed = len(matched) * size
        seq.published = len(matched)
        seq.chain = chain
        if isinstance(seq.owner, Generation) and seq.generator is None:  # not a readmission
            config = seq.owner.config
            seq.generator = make_generator(config.seed, self.device)
            if config.repetition_penalty != 1.0:
                seq.presence = torch.zeros(self.runner.vocab_size, dtype=torch.bool)
                seq.presence[torch.tensor(seq.tokens)] = True
            seq.owner.queued_seconds = time.monotonic() - seq.submitted
            seq.owner.cached_tokens = seq.computed

    def _fill_slots(self, seq: _Seq, index: int, block: int) -> None:
        size = self.block_size
        start = index * size
        end = min(start + size, seq.capacity)
        seq.slots[start:end] = torch.arange(block * size, block * size + end - start)

    # One step --------------------------------------------------------------------------

    def _build(self, plan: list[tuple[_Seq, int]]) -> tuple[StepBatch, list[list[int]]]:
        """The packed step, and for each planned sequence the positions whose logits the
        runner returns (in order)."""
        token_ids, positions, write_slots, logits_rows = [], [], [], []
        wanted: list[list[int]] = []
        decode_rows, decode_seqs, prefills = [], [], []
        adapters: list[str] | None = [] if self.adapter_names else None
        for seq, n in plan:
            start, end = seq.computed, seq.computed + n
            row = len(token_ids)
            token_ids.extend(seq.tokens[start:end])
            positions.extend(range(start, end))
            write_slots.append(seq.slots[start:end])
            if adapters is not None:
                adapters.extend([seq.adapter or "__base__"] * n)
            if n == 1:
                decode_rows.append(row)
                decode_seqs.append(seq)
            else:
                span = torch.arange(end)
                mask = span[None, :] <= torch.arange(start, end)[:, None]
                prefills.append(PrefillChunk(row, n, seq.slots[:end], mask.to(self.device)))
            if isinstance(seq.owner, Generation):
                want = [end - 1] if end == len(seq.tokens) else []
            else:
                want = list(range(max(start, seq.logits_from), min(end, len(seq.tokens) - 1)))
            wanted.append(want)
            logits_rows.extend(row + p - start for p in want)
        decode = None
        if decode_seqs:
            longest = max(s.computed + 1 for s in decode_seqs)
            slots = torch.zeros(len(decode_seqs), longest, dtype=torch.long)
            mask = torch.zeros(len(decode_seqs), 1, 1, longest, dtype=torch.bool)
            for i, seq in enumerate(decode_seqs):
                slots[i, : seq.computed + 1] = seq.slots[: seq.computed + 1]
                mask[i, ..., : seq.computed + 1] = True
            decode = DecodeGroup(
                torch.tensor(decode_rows, device=self.device),
                slots.to(self.device),
                mask.to(self.device),
            )
        device = self.device
        batch = StepBatch(
            token_ids=torch.tensor(token_ids, device=device),
            positions=torch.tensor(positions, device=device),
            write_slots=torch.cat(write_slots).to(device),
            logits_rows=torch.tensor(logits_rows, dtype=torch.long, device=device),
            decode=decode,
            prefills=prefills,
            adapters=adapters,
        )
        return batch, wanted

    def _compute(self, plan, wanted: list[list[int]], logits: torch.Tensor) -> list[_Outcome]:
        """Score continuations and sample next tokens from the step's logits, changing no
        sequence yet."""
        offset = 0
        outcomes: list[_Outcome] = []
        sampling: list[tuple[_Outcome, torch.Tensor]] = []
        for (seq, n), want in zip(plan, wanted, strict=True):
            outcome = _Outcome(seq, n)
            outcomes.append(outcome)
            rows = logits[offset : offset + len(want)]
            offset += len(want)
            if not want:
                continue
            if isinstance(seq.owner, Generation):
                sampling.append((outcome, rows[0]))
                continue
            targets = torch.tensor([seq.tokens[p + 1] for p in want], device=rows.device)
            logprobs = torch.log_softmax(rows, dim=-1)
            outcome.logprob = float(logprobs.gather(1, targets[:, None]).sum())
            outcome.greedy = bool((logprobs.argmax(-1) == targets).all())
        if sampling:
            seqs = [outcome.seq for outcome, _ in sampling]
            tokens = sample_rows(
                torch.stack([row for _, row in sampling]),
                [seq.owner.config for seq in seqs],
                [seq.generator for seq in seqs],
                [seq.presence for seq in seqs],
            )
            for (outcome, _), token in zip(sampling, tokens, strict=True):
                outcome.token = token
        return outcomes

    def _record(self, outcomes: list[_Outcome]) -> None:
        """Apply what a step computed: positions, published blocks, tokens, endings."""
        for outcome in outcomes:
            seq = outcome.seq
            seq.computed += outcome.tokens
            self._publish_full_blocks(seq)
            if isinstance(seq.owner, Generation):
                reason = None if outcome.token is None else self._append(seq, outcome.token)
            else:
                seq.logprob += outcome.logprob
                seq.greedy = seq.greedy and outcome.greedy
                reason = FinishReason.STOP if seq.computed == len(seq.tokens) else None
            if reason is not None:
                self._running.remove(seq)
                self._finish(seq, reason)

    def _append(self, seq: _Seq, token: int) -> FinishReason | None:
        if token in self.eos_token_ids:
            return FinishReason.STOP
        seq.owner.push(token)
        seq.produced += 1
        seq.tokens.append(token)
        if seq.presence is not None:
            seq.presence[token] = True
        if seq.produced >= seq.owner.config.max_tokens or len(seq.tokens) >= seq.capacity:
            return FinishReason.LENGTH
        return None

    def _publish_full_blocks(self, seq: _Seq) -> None:
        size = self.block_size
        while (seq.published + 1) * size <= seq.computed:
            index = seq.published
            tokens = tuple(seq.tokens[index * size : (index + 1) * size])
            seq.chain = chain_key(seq.chain, tokens)
            self.pool.publish(seq.blocks[index], seq.chain, tokens)
            seq.published += 1

    def _finish(self, seq: _Seq, reason: FinishReason, error: BaseException | None = None) -> None:
        """Return the sequence's blocks; tell its owner."""
        for block in seq.blocks:
            self.pool.release(block)
        seq.blocks = []
        owner = seq.owner
        if isinstance(owner, Generation):
            # A stopping engine ends streams as cancelled, not as failed.
            failure = None if isinstance(error, EngineStoppedError) else error
            owner.close(reason, failure)
            return
        scoring = owner.scoring
        if scoring._future.done():
            return
        if error is not None:
            scoring._settle(error=error)
        elif reason is FinishReason.CANCELLED:
            scoring._future.cancel()
        elif seq.part < 0:  # the shared context is computed: its continuations go next
            self._waiting.extendleft(reversed(self._score_seqs(owner, seq.submitted)))
        else:
            owner.results[seq.part] = ContinuationLogprob(
                seq.logprob, len(seq.tokens) - len(scoring.context_ids), seq.greedy
            )
            owner.pending -= 1
            if owner.pending == 0:
                scoring._settle(owner.results)


def _request_id(seq: _Seq) -> str:
    owner = seq.owner
    return owner.request_id if isinstance(owner, Generation) else owner.scoring.request_id
