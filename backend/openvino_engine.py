"""The OpenVINO engine: OpenVINO GenAI's continuous batching behind the native engine's API.

Design decisions:
- `OpenVinoEngine` has the surface the request pipeline uses on `backend.engine.Engine`
  (`submit` returning a `Generation`, `waiting`, `running`, `stop`, `on_step` with
  `StepStats`), so the server does not know which engine serves a model. Token ids go in
  and come out (`add_request` with an `ov.Tensor`): the chat template, detokenizing and
  stop strings stay the server's, exactly as with the native engine.
- One background thread owns the `ContinuousBatchingPipeline`: it adds admitted requests,
  calls `step()` while any request is live, and moves each handle's new tokens into its
  `Generation`. `step()` releases the GIL, so the server's event loop runs meanwhile.
  Admission is ours: at most `max_batch_size` requests are in the pipeline at once, the
  rest wait in a queue of `max_queue` (then `QueueFullError`), as with the native engine.
- A cancelled generation's handle is cancelled before the next step, so the pipeline
  drops it within one step; the other requests' tokens do not change (each request has
  its own sampler state and seed). If `step()` raises, every live stream ends with the
  error (the consumer gets `EngineError`) and the loop carries on: nothing hangs.
- OpenVINO GenAI includes the stop token in its output; the native engine does not, so
  a stop token is dropped here and the stream ends with `FinishReason.STOP`.
- Sampling: temperature 0 is greedy (`do_sample` off); otherwise temperature, top-k (0:
  all), top-p and `rng_seed` (the request's seed, or a fresh random one: OpenVINO's
  default seed is a constant 0, which would make unseeded requests repeat each other);
  repetition penalty as given; `max_new_tokens` capped by the context; the model's
  end-of-turn ids as `stop_token_ids`.
- The KV cache is given in whole GB (`SchedulerConfig.cache_size`): `kv_cache_mb` rounded
  up. Its size in tokens, for refusing a request that could never fit
  (`RequestTooLargeError`), assumes 16-bit cache elements, what the CPU plugin keeps
  (pipeline metrics report the usage a prompt of known length takes; the tests check it).
- No Score: the pipeline gives no prompt log-probabilities (`supports_score = False`).
  No LoRA adapters: the loader serves a model with adapters on the native engine.
- `StepStats`: rows are the pipeline's scheduled requests; tokens are the tokens produced
  plus the prompt of each request that got its first token this step (its prefill, which
  dynamic split-fuse may have spread over earlier steps); kv_usage is the pipeline's cache
  usage. The pipeline does not report prefix-cache hits, so `cached_tokens` and the
  prefix counters stay 0.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backend.engine import (
    EngineConfig,
    EngineStoppedError,
    FinishReason,
    Generation,
    QueueFullError,
    RequestTooLargeError,
    StepStats,
    check_generation,
)
from backend.sampling import SamplingConfig

log = logging.getLogger("chatforge.openvino")

KV_BYTES_PER_ELEMENT = 2  # the CPU plugin's KV cache precision (16-bit)


def kv_bytes_per_token(model_dir: Path) -> int:
    """KV cache bytes one token takes, from the export's config.json."""
    config = json.loads((model_dir / "config.json").read_text())
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    return 2 * config["num_hidden_layers"] * kv_heads * head_dim * KV_BYTES_PER_ELEMENT


def cache_gigabytes(kv_cache_mb: int) -> int:
    return max(1, math.ceil(kv_cache_mb / 1024))


def open_pipeline(model_dir: Path, config: EngineConfig, kv_cache_mb: int) -> Any:
    """A ContinuousBatchingPipeline on the CPU over an OpenVINO export."""
    import openvino_genai

    scheduler = openvino_genai.SchedulerConfig()
    scheduler.cache_size = cache_gigabytes(kv_cache_mb)
    scheduler.max_num_seqs = config.max_batch_size
    scheduler.max_num_batched_tokens = config.max_batch_tokens
    scheduler.enable_prefix_caching = config.prefix_cache
    scheduler.dynamic_split_fuse = True  # prompts in chunks beside running decodes
    return openvino_genai.ContinuousBatchingPipeline(str(model_dir), scheduler, "CPU")


def generation_config(config: SamplingConfig, stop_ids: Sequence[int], max_new_tokens: int):
    """OpenVINO GenAI's per-request config for our sampling settings."""
    import openvino_genai

    out = openvino_genai.GenerationConfig()
    out.max_new_tokens = max_new_tokens
    out.stop_token_ids = set(stop_ids)
    out.ignore_eos = False
    out.repetition_penalty = config.repetition_penalty
    out.do_sample = not config.greedy
    if not config.greedy:
        out.temperature = config.temperature
        out.top_p = config.top_p
        if config.top_k > 0:
            out.top_k = config.top_k
        out.rng_seed = config.seed if config.seed is not None else random.getrandbits(31)
    return out


@dataclass(eq=False)
class _Request:
    generation: Generation
    request_id: int
    submitted: float
    handle: Any = None
    produced: int = 0


class OpenVinoEngine:
    """Serves one OpenVINO export; runs the pipeline's step loop on a background thread."""

    supports_score = False

    def __init__(
        self,
        pipeline: Any,
        eos_token_ids: Sequence[int],
        context_length: int,
        config: EngineConfig,
        token_capacity: int | None = None,
        on_step: Callable[[StepStats], None] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.config = config
        self.eos_token_ids = frozenset(eos_token_ids)
        self.context_length = context_length
        self.token_capacity = token_capacity
        self.on_step = on_step
        self._incoming: collections.deque[_Request] = collections.deque()
        self._live: list[_Request] = []
        self._wakeup = threading.Condition()
        self._ids = itertools.count()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="openvino-engine", daemon=True)
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
        if adapter is not None:
            raise ValueError(f"unknown adapter {adapter!r}; this engine has: none")
        check_generation(prompt_ids, config, self.context_length, self.token_capacity)
        serial = next(self._ids)
        generation = Generation(request_id or str(serial), list(prompt_ids), config)
        request = _Request(generation, serial, time.monotonic())
        with self._wakeup:
            if self._stopping.is_set():
                raise EngineStoppedError("the engine is shutting down")
            if len(self._incoming) >= self.config.max_queue:
                raise QueueFullError(len(self._incoming))
            self._incoming.append(request)
            self._wakeup.notify()
        return generation

    def submit_score(self, *args, **kwargs):
        raise NotImplementedError(
            "the OpenVINO engine cannot score: OpenVINO GenAI gives no prompt "
            "log-probabilities; serve this model with `engine: native` to score with it"
        )

    def generate(
        self, prompt_ids: Sequence[int], config: SamplingConfig, adapter: str | None = None
    ) -> list[int]:
        """Convenience: run one request to completion and return its ids."""
        return list(self.submit(prompt_ids, config, adapter))

    @property
    def waiting(self) -> int:
        return len(self._incoming)

    @property
    def running(self) -> int:
        return len(self._live)

    def stop(self) -> None:
        """Cancel everything and end the step loop."""
        with self._wakeup:
            self._stopping.set()
            self._wakeup.notify()
        self._thread.join(timeout=10)

    # The step loop ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wakeup:
                if not (self._live or self._incoming):
                    self._wakeup.wait_for(
                        lambda: self._incoming or self._stopping.is_set(), timeout=1.0
                    )
            if self._stopping.is_set():
                self._end_all(None)
                return
            try:
                self._drop_cancelled()
                admitted = self._admit()
                if self._live:
                    self._step(admitted)
            except Exception as exc:  # the pipeline failed: end streams, never hang them
                log.exception("OpenVINO step failed; ending every request in flight")
                self._end_all(exc)

    def _end_all(self, error: BaseException | None) -> None:
        with self._wakeup:
            queued = list(self._incoming)
            self._incoming.clear()
        for request in [*self._live, *queued]:
            if request.handle is not None:
                request.handle.cancel()
            request.generation.close(FinishReason.CANCELLED, error)
        self._live.clear()

    def _drop_cancelled(self) -> None:
        for request in [r for r in self._live if r.generation.cancelled]:
            request.handle.cancel()  # the pipeline frees it at the next step
            self._live.remove(request)
            request.generation.close(FinishReason.CANCELLED)

    def _admit(self) -> list[_Request]:
        admitted = []
        while len(self._live) < self.config.max_batch_size:
            with self._wakeup:
                if not self._incoming:
                    break
                request = self._incoming.popleft()
            generation = request.generation
            if generation.cancelled:
                generation.close(FinishReason.CANCELLED)
                continue
            prompt = generation.prompt_ids
            budget = min(generation.config.max_tokens, self.context_length - len(prompt))
            settings = generation_config(generation.config, sorted(self.eos_token_ids), budget)
            ids = self._tensor(prompt)
            request.handle = self.pipeline.add_request(request.request_id, ids, settings)
            generation.queued_seconds = time.monotonic() - request.submitted
            self._live.append(request)
            admitted.append(request)
        return admitted

    @staticmethod
    def _tensor(ids: Sequence[int]):
        import openvino

        return openvino.Tensor(np.asarray([ids], dtype=np.int64))

    def _step(self, admitted: list[_Request]) -> None:
        started = time.monotonic()
        self.pipeline.step()
        tokens = 0
        for request in list(self._live):
            before = request.produced
            reason, error = self._read(request)
            if before == 0 and (request.produced or reason is not None):
                tokens += len(request.generation.prompt_ids)
            tokens += request.produced - before
            if reason is not None:
                self._live.remove(request)
                request.generation.close(reason, error)
        if self.on_step is not None:
            metrics = self.pipeline.get_metrics()
            self.on_step(
                StepStats(
                    rows=metrics.scheduled_requests,
                    tokens=tokens,
                    seconds=time.monotonic() - started,
                    running=len(self._live),
                    waiting=self.waiting,
                    kv_usage=metrics.cache_usage / 100,
                    prefix_queried=0,
                    prefix_hits=0,
                    queue_seconds=tuple(r.generation.queued_seconds or 0.0 for r in admitted),
                )
            )

    def _read(self, request: _Request) -> tuple[FinishReason | None, BaseException | None]:
        """Push the handle's new tokens; the finish reason (and error) once it is done."""
        import openvino_genai

        reasons = openvino_genai.GenerationFinishReason
        handle, generation = request.handle, request.generation
        while handle.can_read():
            for output in handle.read().values():  # one sequence per request
                stopped = output.finish_reason == reasons.STOP
                for token in output.generated_ids:
                    if stopped and token in self.eos_token_ids:
                        return FinishReason.STOP, None
                    generation.push(token)
                    request.produced += 1
                if stopped:  # a stop without its token in the output
                    return FinishReason.STOP, None
                if output.finish_reason == reasons.LENGTH:
                    return FinishReason.LENGTH, None
        if handle.get_status() == openvino_genai.GenerationStatus.IGNORED:
            error = RequestTooLargeError("OpenVINO could not fit the prompt in its KV cache")
            return FinishReason.CANCELLED, error
        return None, None
