"""Continuous batching on the tiny model in fp32: answers do not depend on the batch, the
prefix cache or the chunking; cancelled and failed rows leave the others alone; every KV
block comes back."""

from __future__ import annotations

import functools
import random

import pytest
import torch
from transformers import AutoModelForCausalLM

from backend.engine import (
    Engine,
    EngineConfig,
    EngineError,
    EngineStoppedError,
    FinishReason,
    QueueFullError,
    RequestTooLargeError,
    chain_key,
    root_key,
)
from backend.logprobs import continuation_logprobs
from backend.model_loader import build_engine
from backend.paged_llama import ROW_BLOCK, PagedLlama, RowPadding
from backend.sampling import SamplingConfig

GREEDY = SamplingConfig(temperature=0.0, max_tokens=24)


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def _engine_with_steps(model, config: EngineConfig):
    steps = []
    engine = build_engine(model, [], 1024, config, on_step=steps.append, deterministic=True)
    engine.steps = steps
    return engine


@pytest.fixture(scope="module")
def engine(model):
    """Without the prefix cache: every request computes its whole prompt, so comparing
    alone and batched runs compares real computation."""
    engine = _engine_with_steps(model, EngineConfig(prefix_cache=False))
    yield engine
    engine.stop()


@pytest.fixture
def prefix_engine(model):
    """A fresh engine with the prefix cache on (nothing cached yet)."""
    engine = _engine_with_steps(model, EngineConfig())
    yield engine
    engine.stop()


def prompts(count: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(3, 390) for _ in range(rng.randrange(3, 300))] for _ in range(count)]


def assert_all_blocks_free(engine) -> None:
    assert engine.pool.in_use == 0
    assert engine.running == 0 and engine.waiting == 0


def test_greedy_output_is_the_same_alone_and_in_a_batch_of_16(engine):
    batch = prompts(16)
    alone = [engine.generate(p, GREEDY) for p in batch]
    engine.steps.clear()
    handles = [engine.submit(p, GREEDY) for p in batch]
    together = [list(h) for h in handles]
    assert together == alone
    assert max(step.rows for step in engine.steps) >= 8  # they really ran together
    assert_all_blocks_free(engine)


def test_seeded_sampling_is_the_same_alone_and_batched(engine):
    config = SamplingConfig(temperature=1.0, top_p=0.9, top_k=50, max_tokens=30, seed=11)
    target = prompts(1, seed=3)[0]
    alone = engine.generate(target, config)
    noise = [engine.submit(p, SamplingConfig(temperature=0.8, max_tokens=30)) for p in prompts(6)]
    together = engine.submit(target, config)
    assert list(together) == alone
    for handle in noise:
        list(handle)


def test_repetition_penalty_rows_in_a_batch_match_alone(engine):
    config = SamplingConfig(temperature=0.0, max_tokens=20, repetition_penalty=1.3)
    batch = prompts(5, seed=5)
    alone = [engine.generate(p, config) for p in batch]
    assert [list(engine.submit(p, config)) for p in batch] == alone


def test_a_prefix_cache_hit_gives_the_same_output(engine, prefix_engine):
    system = prompts(1, seed=7)[0][:100]
    first, second = system + [11, 12, 13], system + [21, 22]
    cold = engine.generate(second, GREEDY)
    prefix_engine.generate(first, GREEDY)
    warm = prefix_engine.submit(second, GREEDY)
    assert list(warm) == cold
    assert warm.cached_tokens == 96  # six full blocks of the shared 100 tokens


def test_the_next_turn_reuses_the_previous_prompt_and_answer(prefix_engine):
    turn1 = prompts(1, seed=9)[0][:60]
    answer = prefix_engine.generate(turn1, GREEDY)
    turn2 = turn1 + answer + [5, 6, 7]
    handle = prefix_engine.submit(turn2, GREEDY)
    list(handle)
    assert handle.cached_tokens == (len(turn1) + len(answer) - 1) // 16 * 16


def test_chunked_prefill_equals_whole_prefill(model):
    long_prompt = prompts(1, seed=13)[0] * 3  # about 600 tokens
    whole = build_engine(model, [], 1024, EngineConfig(max_batch_tokens=2048), deterministic=True)
    chunked = build_engine(
        model, [], 1024, EngineConfig(max_batch_size=4, max_batch_tokens=16), deterministic=True
    )
    try:
        assert chunked.generate(long_prompt, GREEDY) == whole.generate(long_prompt, GREEDY)
    finally:
        whole.stop()
        chunked.stop()


def test_a_long_prompt_delays_running_streams_by_at_most_one_chunk(model):
    steps = []
    config = EngineConfig(max_batch_size=4, max_batch_tokens=32)
    engine = build_engine(model, [], 2048, config, on_step=steps.append)
    try:
        running = engine.submit([5, 6, 7], SamplingConfig(temperature=0.0, max_tokens=200))
        next(iter(running))
        engine.submit(prompts(1)[0] * 6, GREEDY)  # ~1,500 tokens
        list(running)
        assert max(step.tokens for step in steps) <= 32
    finally:
        engine.stop()


def test_cancelling_one_row_leaves_the_others_unchanged(engine):
    batch = prompts(6, seed=17)
    config = SamplingConfig(temperature=0.0, max_tokens=40)
    alone = [engine.generate(p, config) for p in batch]
    handles = [engine.submit(p, config) for p in batch]
    victim = handles[2]
    got = []
    for token in victim:
        got.append(token)
        if len(got) == 5:
            victim.cancel()
    assert victim.finish_reason is FinishReason.CANCELLED
    assert len(got) < 40
    others = [list(h) for i, h in enumerate(handles) if i != 2]
    assert others == [a for i, a in enumerate(alone) if i != 2]
    assert_all_blocks_free(engine)


class _FailingRunner:
    """The real runner, except that a step holding `poison` fails (an injected fault)."""

    def __init__(self, runner: PagedLlama, poison: int) -> None:
        self.runner, self.poison = runner, poison
        self.num_blocks, self.block_size = runner.num_blocks, runner.block_size
        self.vocab_size, self.device = runner.vocab_size, runner.device

    def forward(self, batch):
        if bool((batch.token_ids == self.poison).any()):
            raise RuntimeError("injected failure")
        return self.runner.forward(batch)


def _failing_runner(model) -> _FailingRunner:
    return _FailingRunner(PagedLlama(model, num_blocks=1024, block_size=16), poison=2)


def test_a_failed_step_names_the_request_and_the_engine_goes_on(model):
    engine = Engine(_failing_runner(model), [], 512)
    try:
        bad = engine.submit([5, 2, 7], GREEDY, request_id="req-42")
        with pytest.raises(EngineError, match="req-42"):
            list(bad)
        assert len(engine.generate([5, 6, 7], GREEDY)) == GREEDY.max_tokens
        assert_all_blocks_free(engine)
    finally:
        engine.stop()


def test_after_1000_mixed_requests_every_block_is_free(model):
    engine = Engine(_failing_runner(model), [], 512, EngineConfig(max_queue=1000))
    rng = random.Random(0)
    try:
        handles = []
        for i in range(1000):
            prompt = [rng.randrange(3, 390) for _ in range(rng.randrange(1, 40))]
            if i % 7 == 0:
                prompt.append(2)  # fails in the engine
            config = SamplingConfig(
                temperature=rng.choice([0.0, 0.9]), max_tokens=rng.randint(1, 6)
            )
            handles.append(engine.submit(prompt, config))
            if i % 5 == 0:
                handles[-1].cancel()
        outcomes = {"finished": 0, "failed": 0, "cancelled": 0}
        for handle in handles:
            try:
                list(handle)
            except EngineError:
                outcomes["failed"] += 1
                continue
            cancelled = handle.finish_reason is FinishReason.CANCELLED
            outcomes["cancelled" if cancelled else "finished"] += 1
        assert all(outcomes.values()), outcomes
        assert_all_blocks_free(engine)
    finally:
        engine.stop()


def test_full_cache_waits_and_an_impossible_request_is_refused(model):
    small = build_engine(model, [], 4096, EngineConfig(max_batch_size=8), kv_cache_mb=1)
    try:
        with pytest.raises(RequestTooLargeError, match="KV cache"):
            small.submit([5] * 900, SamplingConfig(max_tokens=100_000))
        # Each request needs half the cache: they take turns, and both finish.
        half = small.pool.num_blocks * 16 // 2 - 16
        handles = [small.submit([5, 6], SamplingConfig(max_tokens=half)) for _ in range(3)]
        assert [len(list(h)) for h in handles] == [half] * 3
        assert_all_blocks_free(small)
    finally:
        small.stop()


def test_past_the_queue_bound_the_error_says_how_many_wait(model):
    engine = build_engine(model, [], 512, EngineConfig(max_batch_size=1, max_queue=2))
    try:
        handles = [engine.submit([5, 6], SamplingConfig(max_tokens=400))]
        next(iter(handles[0]))  # running: the next two wait
        handles += [engine.submit([5, 6], SamplingConfig(max_tokens=5)) for _ in range(2)]
        with pytest.raises(QueueFullError, match="2 requests waiting"):
            engine.submit([5, 6], SamplingConfig(max_tokens=5))
        for handle in handles:
            handle.cancel()
    finally:
        engine.stop()


def test_scoring_computes_the_context_once_and_matches_the_reference(prefix_engine, model):
    engine = prefix_engine
    context = prompts(1, seed=21)[0][:150]
    continuations = [[7, 8, 9], [10], [11, 12, 13, 14, 15]]
    scores = engine.submit_score(context, continuations).result(60)
    expected = continuation_logprobs(model, context, continuations)
    for got, want in zip(scores, expected, strict=True):
        assert got.tokens == want.tokens and got.greedy == want.greedy
        assert got.logprob == pytest.approx(want.logprob, abs=1e-3)
    computed = sum(step.tokens for step in engine.steps)
    assert computed < len(context) + 3 * 16 + 9  # the context once, plus short tails
    assert_all_blocks_free(engine)


@pytest.mark.slow
def test_default_model_answers_are_the_same_alone_and_batched():
    """The real default model (fp32), chat-templated questions of different lengths: each
    greedy answer is the same alone and among 15 others."""
    from backend.model_loader import load_model
    from backend.registry import ModelSpec

    spec = ModelSpec(name="smollm2", gguf="builtin", prefix_cache=False, deterministic=True)
    loaded = load_model(spec)
    questions = [
        "What is the capital of France?",
        "Explain what a Python list comprehension is, with an example.",
        "Write a haiku about the sea.",
        "Summarise the plot of Hamlet in three sentences. " * 4,
    ] + [f"Count from {i} to {i + 5} and say why numbers matter." for i in range(12)]
    prompts = [loaded.codec.encode_chat([{"role": "user", "content": q}]) for q in questions]
    config = SamplingConfig(temperature=0.0, max_tokens=24)
    engine = loaded.engine
    try:
        alone = [engine.generate(p, config) for p in prompts[:4]]
        handles = [engine.submit(p, config) for p in prompts]
        assert [list(h) for h in handles][:4] == alone
    finally:
        engine.stop()


def test_row_padding_measures_which_row_counts_are_exact():
    """A product whose rows come out differently unless the call has 4 or 8 rows (as a
    kernel that switches paths by row count does): only those counts are kept, and a
    step's last block is padded up to the nearest one."""

    def product(x: torch.Tensor) -> torch.Tensor:
        return x * 2 + (0 if x.shape[0] in (4, 8, ROW_BLOCK) else 1e-7)

    padding = RowPadding.measure([(product, 8)], torch.device("cpu"), torch.float32)
    assert padding.exact == [4, 8, ROW_BLOCK]
    assert [padding.rows(n) for n in (1, 4, 5, 9, ROW_BLOCK, ROW_BLOCK + 1)] == [
        4, 4, 8, ROW_BLOCK, ROW_BLOCK, ROW_BLOCK + 4,
    ]  # fmt: skip


def test_fused_projections_give_what_the_separate_ones_give(model):
    """q/k/v and gate/up run as one product each; every output equals its own module's, so
    fusing changes no token (and the transformers model, whose weights became views of
    the fused one, still computes the same)."""
    runner = PagedLlama(model, num_blocks=8, block_size=16, deterministic=True)
    assert all(p.fused is not None for p in runner.qkv + runner.gate_up)
    x = torch.randn(ROW_BLOCK, model.config.hidden_size, generator=torch.Generator().manual_seed(1))
    linear = functools.partial(runner._linear, adapters=None)
    with torch.inference_mode():
        for index, layer in enumerate(runner.layers):
            attn, mlp = layer.self_attn, layer.mlp
            outputs = runner.qkv[index](linear, x) + runner.gate_up[index](linear, x)
            modules = (attn.q_proj, attn.k_proj, attn.v_proj, mlp.gate_proj, mlp.up_proj)
            for fused, module in zip(outputs, modules, strict=True):
                assert torch.equal(fused, linear(module, x))
                assert torch.allclose(fused, module(x), atol=1e-5)


class _TruncatingRunner(_FailingRunner):
    """The real runner, except that a step holding `poison` loses its last logits row: the
    forward pass succeeds and the step fails afterwards, while its results are read."""

    def forward(self, batch):
        logits = self.runner.forward(batch)
        return logits[:-1] if bool((batch.token_ids == self.poison).any()) else logits


def test_a_step_that_fails_after_its_forward_pass_leaves_no_row_half_advanced(model):
    runner = PagedLlama(model, num_blocks=1024, block_size=16, deterministic=True)
    engine = Engine(_TruncatingRunner(runner, poison=2), [], 512)
    healthy = prompts(3, seed=23)
    try:
        alone = [engine.generate(p, GREEDY) for p in healthy]
        handles = [engine.submit(p, GREEDY) for p in healthy]
        bad = engine.submit([5, 6, 2], GREEDY, request_id="req-7")  # last row of the step
        with pytest.raises(EngineError, match="req-7"):
            list(bad)
        assert [list(h) for h in handles] == alone
        assert_all_blocks_free(engine)
    finally:
        engine.stop()


class _BrokenCleanupEngine(Engine):
    """An engine whose clean-up after a failed step fails too (a bug in the loop)."""

    def _end_all(self, error: BaseException) -> None:
        raise RuntimeError("clean-up failed")


def test_a_broken_step_loop_ends_every_stream_and_refuses_new_work(model):
    failures, broken = [], []

    def on_step(stats) -> None:
        if broken:
            raise RuntimeError("metrics failed")

    runner = PagedLlama(model, num_blocks=64, block_size=16)
    engine = _BrokenCleanupEngine(runner, [], 512, on_step=on_step, on_failure=failures.append)
    running = engine.submit([5, 6, 7], SamplingConfig(temperature=0.0, max_tokens=400))
    next(iter(running))
    broken.append(True)  # the next step fails, and the clean-up after it
    with pytest.raises(EngineError, match="clean-up failed"):
        list(running)
    assert [str(f) for f in failures] == ["clean-up failed"]
    with pytest.raises(EngineStoppedError, match="engine failed"):
        engine.submit([5, 6], GREEDY)
    engine.stop()


def test_a_request_that_does_not_fit_yet_lets_smaller_ones_pass(model):
    engine = Engine(PagedLlama(model, num_blocks=16, block_size=16), [], 512)
    try:
        first = engine.submit([5, 6], SamplingConfig(temperature=0.0, max_tokens=200))
        stream = iter(first)
        for _ in range(100):  # the first now holds 7 of the 16 blocks
            next(stream)
        large = engine.submit([7] * 150, SamplingConfig(max_tokens=1))  # needs 10 blocks
        small = engine.submit([8, 9], SamplingConfig(temperature=0.0, max_tokens=4))
        assert len(list(small)) == 4  # went ahead while the large prompt waited
        assert large.queued_seconds is None
        first.cancel()
        assert len(list(large)) == 1
        assert_all_blocks_free(engine)
    finally:
        engine.stop()


def test_sequences_outgrowing_the_cache_are_preempted_and_resume_unchanged(model):
    config = EngineConfig(max_batch_size=8, prefix_cache=False)
    engine = build_engine(model, [], 4096, config, kv_cache_mb=1, deterministic=True)
    long = SamplingConfig(temperature=0.0, max_tokens=engine.pool.num_blocks * 16 // 3)
    batch = prompts(4, seed=29)
    try:
        alone = [engine.generate(p[:20], long) for p in batch]
        handles = [engine.submit(p[:20], long) for p in batch]
        assert [list(h) for h in handles] == alone
        assert engine.preemptions > 0
        assert_all_blocks_free(engine)
    finally:
        engine.stop()


def test_prefix_keys_are_digests_of_the_whole_prefix():
    tokens = [1, 2, 3]
    assert chain_key(root_key(None), tokens) == chain_key(root_key(None), tokens)
    assert chain_key(root_key(None), tokens) != chain_key(root_key("docs"), tokens)
    assert chain_key(chain_key(root_key(None), [4]), tokens) != chain_key(root_key(None), tokens)
    assert len(chain_key(root_key(None), tokens)) == 16
