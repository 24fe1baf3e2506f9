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
"""

from __future__ import annotations

import enum
import itertools
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch

from backend.sampling import SamplingConfig, make_generator, sample_next


class FinishReason(enum.Enum):
    STOP = "stop"  # an end-of-sequence token
    LENGTH = "length"  # max_tokens or the context length
    CANCELLED = "cancelled"


class QueueFullError(RuntimeError):
    """The engine's request queue is full; the caller should retry later."""


class EngineStoppedError(RuntimeError):
    """The engine no longer accepts requests."""


@dataclass
class _Finished:
    reason: FinishReason
    error: BaseException | None = None


@dataclass
class Generation:
    """A handle on one request: iterate it for token ids, or cancel it."""

    request_id: int
    prompt_ids: list[int]
    config: SamplingConfig
    adapter: str | None = None
    _events: queue.Queue = field(default_factory=queue.Queue, repr=False)
    _cancelled: threading.Event = field(default_factory=threading.Event, repr=False)
    finish_reason: FinishReason | None = None

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def __iter__(self) -> Iterator[int]:
        while True:
            item = self._events.get()
            if isinstance(item, _Finished):
                self.finish_reason = item.reason
                if item.error is not None:
                    raise RuntimeError("generation failed in the engine") from item.error
                return
            yield item


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
        self._pending: queue.Queue[Generation] = queue.Queue(maxsize=max_queue)
        self._ids = itertools.count()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine", daemon=True)
        self._thread.start()

    def submit(
        self, prompt_ids: Sequence[int], config: SamplingConfig, adapter: str | None = None
    ) -> Generation:
        if self._stopping.is_set():
            raise EngineStoppedError("the engine is shutting down")
        if adapter is not None and adapter not in self.adapter_names:
            known = ", ".join(sorted(self.adapter_names)) or "none"
            raise ValueError(f"unknown adapter {adapter!r}; this engine has: {known}")
        generation = Generation(next(self._ids), list(prompt_ids), config, adapter)
        try:
            self._pending.put_nowait(generation)
        except queue.Full:
            raise QueueFullError(
                f"the request queue is full ({self._pending.maxsize} waiting)"
            ) from None
        return generation

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
                generation = self._pending.get(timeout=0.1) if block else self._pending.get_nowait()
            except queue.Empty:
                return
            block = False
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

    def _step(self, item: _Active) -> FinishReason | None:
        """One forward pass and one sampled token for one request."""
        input_ids = torch.tensor([item.next_input], device=self.device)
        # logits_to_keep=1: the prefill needs the last position's logits only.
        extra = {}
        if self.adapter_names:
            extra["adapter_names"] = [item.generation.adapter or "__base__"]
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
                self._pending.get_nowait()._events.put(_Finished(FinishReason.CANCELLED))
            except queue.Empty:
                return
