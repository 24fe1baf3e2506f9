"""The engine: token ids in, token ids out, one decode loop per model.

Design decisions:
- The engine owns its model. Requests go into a bounded queue; one thread runs the decode
  loop and is the only caller of the model's forward pass, so concurrent streams never run
  competing forward passes (or fight over threads on a 2-core machine).
- Each active request keeps its own KV cache (the `cache` of the transformers model)
  and the loop steps the active requests round-robin, one token each, so a long answer
  does not starve a short one. Every forward pass is a batch of one for now; batching
  across requests replaces `_step` and nothing else.
- It knows nothing of chat formats, text, gRPC or HTTP: a request is a list of prompt ids
  and a `SamplingConfig`; the result is a stream of ids and a finish reason. Stop strings
  are text, so they are matched by the caller, which cancels the generation.
- A model that holds several PEFT adapters serves them all from this one loop: each
  request names its adapter, and every forward pass of that request passes it as
  `adapter_names` (`__base__` for none), so interleaved requests never see each other's
  adapter and nothing global is switched between steps.
- Cancellation is a flag checked before every step: a cancelled request stops within one
  decode step and its cache is freed at once.
- Scoring (log-likelihoods for evals) is a second request kind in the same queue: the loop
  runs it whole when it is admitted, between decode steps, so the model's forward pass
  still has exactly one caller and scoring obeys the same back-pressure as generation.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import enum
import functools
import itertools
import queue
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from backend.logprobs import ContinuationLogprob, continuation_logprobs
from backend.sampling import SamplingConfig, make_generator, sample_next


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

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

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


@dataclass
class _Active:
    generation: Generation
    generator: torch.Generator
    seen: torch.Tensor  # prompt + generated ids, for the repetition penalty
    cache: object | None = None
    produced: int = 0
    next_input: list[int] = field(default_factory=list)


class Engine:
    """Owns one causal LM and runs its decode loop on a background thread."""

    def __init__(
        self,
        model: torch.nn.Module,
        eos_token_ids: Sequence[int],
        context_length: int,
        max_queue: int = 64,
        max_active: int = 8,
        adapter_names: Sequence[str] = (),
    ) -> None:
        self.model = model.eval()
        self.adapter_names = frozenset(adapter_names)
        self.device = next(model.parameters()).device
        self.eos_token_ids = frozenset(eos_token_ids)
        self.context_length = context_length
        self.max_active = max_active
        self._pending: queue.Queue[Generation | Scoring] = queue.Queue(maxsize=max_queue)
        self._ids = itertools.count()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine", daemon=True)
        self._thread.start()

    def submit(
        self,
        prompt_ids: Sequence[int],
        config: SamplingConfig,
        adapter: str | None = None,
        request_id: str = "",
    ) -> Generation:
        """Queue a generation; `request_id` names it in errors (a serial number if empty)."""
        self._check_adapter(adapter)
        request_id = request_id or str(next(self._ids))
        return self._enqueue(Generation(request_id, list(prompt_ids), config, adapter))

    def submit_score(
        self,
        context_ids: Sequence[int],
        continuations: Sequence[Sequence[int]],
        adapter: str | None = None,
        request_id: str = "",
    ) -> Scoring:
        """Queue a scoring request; `result()` or `wait()` on the handle waits for it."""
        self._check_adapter(adapter)
        request_id = request_id or str(next(self._ids))
        scoring = Scoring(list(context_ids), [list(c) for c in continuations], adapter, request_id)
        return self._enqueue(scoring)

    def _check_adapter(self, adapter: str | None) -> None:
        if adapter is not None and adapter not in self.adapter_names:
            known = ", ".join(sorted(self.adapter_names)) or "none"
            raise ValueError(f"unknown adapter {adapter!r}; this engine has: {known}")

    def _enqueue(self, request):
        if self._stopping.is_set():
            raise EngineStoppedError("the engine is shutting down")
        try:
            self._pending.put_nowait(request)
        except queue.Full:
            raise QueueFullError(self._pending.qsize()) from None
        return request

    def generate(
        self, prompt_ids: Sequence[int], config: SamplingConfig, adapter: str | None = None
    ) -> list[int]:
        """Convenience: run one request to completion and return its ids."""
        return list(self.submit(prompt_ids, config, adapter))

    def stop(self) -> None:
        """Cancel everything and end the decode loop."""
        self._stopping.set()
        self._thread.join(timeout=10)

    # The decode loop -------------------------------------------------------------------

    def _run(self) -> None:
        active: list[_Active] = []
        with torch.inference_mode():
            while True:
                if self._stopping.is_set():
                    for item in active:
                        self._finish(item, FinishReason.CANCELLED)
                    self._drain_pending()
                    return
                self._admit(active, block=not active)
                for item in list(active):
                    if item.generation.cancelled:
                        self._finish(item, FinishReason.CANCELLED)
                        active.remove(item)
                        continue
                    try:
                        reason = self._step(item)
                    except Exception as exc:  # one bad request must not kill the loop
                        self._finish(item, FinishReason.CANCELLED, exc)
                        active.remove(item)
                        continue
                    if reason is not None:
                        self._finish(item, reason)
                        active.remove(item)

    def _admit(self, active: list[_Active], block: bool) -> None:
        while len(active) < self.max_active:
            try:
                request = self._pending.get(timeout=0.1) if block else self._pending.get_nowait()
            except queue.Empty:
                return
            block = False
            if isinstance(request, Scoring):
                self._score(request)
                continue
            generation = request
            if generation.cancelled:
                generation._events.put(_Finished(FinishReason.CANCELLED))
                continue
            active.append(
                _Active(
                    generation=generation,
                    generator=make_generator(generation.config.seed, self.device),
                    seen=torch.tensor(generation.prompt_ids, device=self.device),
                    next_input=generation.prompt_ids,
                )
            )

    def _adapter_kwargs(self, adapter: str | None) -> dict:
        """PEFT's per-request adapter selection, when this engine serves adapters."""
        return {"adapter_names": [adapter or "__base__"]} if self.adapter_names else {}

    def _score(self, scoring: Scoring) -> None:
        try:
            scores = continuation_logprobs(
                self.model,
                scoring.context_ids,
                scoring.continuations,
                **self._adapter_kwargs(scoring.adapter),
            )
        except Exception as exc:  # one bad request must not kill the loop
            scoring._settle(error=exc)
        else:
            scoring._settle(scores)

    def _step(self, item: _Active) -> FinishReason | None:
        """One forward pass and one sampled token for one request."""
        input_ids = torch.tensor([item.next_input], device=self.device)
        # logits_to_keep=1: the prefill needs the last position's logits only.
        extra = self._adapter_kwargs(item.generation.adapter)
        out = self.model(
            input_ids=input_ids, cache=item.cache, use_cache=True, logits_to_keep=1, **extra
        )
        item.cache = out.cache
        token = sample_next(out.logits[0, -1], item.seen, item.generation.config, item.generator)
        if token in self.eos_token_ids:
            return FinishReason.STOP
        item.generation._events.put(token)
        item.produced += 1
        item.seen = torch.cat([item.seen, item.seen.new_tensor([token])])
        item.next_input = [token]
        total = len(item.generation.prompt_ids) + item.produced
        if item.produced >= item.generation.config.max_tokens or total >= self.context_length:
            return FinishReason.LENGTH
        return None

    def _finish(
        self, item: _Active, reason: FinishReason, error: BaseException | None = None
    ) -> None:
        item.cache = None
        item.generation._events.put(_Finished(reason, error))

    def _drain_pending(self) -> None:
        while True:
            try:
                request = self._pending.get_nowait()
            except queue.Empty:
                return
            if isinstance(request, Scoring):
                request._settle(error=EngineStoppedError("the engine is shutting down"))
            else:
                request._events.put(_Finished(FinishReason.CANCELLED))
