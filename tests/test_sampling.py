"""The sampling rules and the engine's decode loop, on a tiny random model."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from backend.engine import FinishReason
from backend.model_loader import build_engine
from backend.sampling import SamplingConfig, filter_top_k_top_p, make_generator, sample_rows


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()


@pytest.fixture(scope="module")
def engine(model):
    # No end-of-sequence ids: the random model must run to max_tokens for a fair comparison.
    engine = build_engine(model, [], 512)
    yield engine
    engine.stop()


PROMPT = [5, 17, 42, 99, 7]


def test_greedy_matches_generate(model, engine):
    expected = model.generate(
        torch.tensor([PROMPT]),
        max_new_tokens=40,
        do_sample=False,
        eos_token_id=None,
        pad_token_id=0,
    )[0, len(PROMPT) :].tolist()
    got = engine.generate(PROMPT, SamplingConfig(temperature=0.0, max_tokens=40))
    assert got == expected


def test_greedy_with_repetition_penalty_matches_generate(model, engine):
    expected = model.generate(
        torch.tensor([PROMPT]),
        max_new_tokens=30,
        do_sample=False,
        repetition_penalty=1.3,
        eos_token_id=None,
        pad_token_id=0,
    )[0, len(PROMPT) :].tolist()
    config = SamplingConfig(temperature=0.0, max_tokens=30, repetition_penalty=1.3)
    assert engine.generate(PROMPT, config) == expected


def test_same_seed_same_output_different_seed_differs(engine):
    config = SamplingConfig(temperature=1.0, top_p=0.95, max_tokens=30, seed=1234)
    first = engine.generate(PROMPT, config)
    assert engine.generate(PROMPT, config) == first
    other = SamplingConfig(temperature=1.0, top_p=0.95, max_tokens=30, seed=4321)
    assert engine.generate(PROMPT, other) != first


def test_seeded_output_does_not_depend_on_concurrent_requests(engine):
    config = SamplingConfig(temperature=1.0, max_tokens=25, seed=7)
    alone = engine.generate(PROMPT, config)
    noise = [engine.submit(PROMPT, SamplingConfig(max_tokens=25)) for _ in range(3)]
    together = engine.submit(PROMPT, config)
    assert list(together) == alone
    for generation in noise:
        list(generation)


def test_max_tokens_and_finish_reason(engine):
    generation = engine.submit(PROMPT, SamplingConfig(temperature=0.0, max_tokens=5))
    assert len(list(generation)) == 5
    assert generation.finish_reason is FinishReason.LENGTH


def test_eos_stops_with_stop_reason(model):
    greedy_first = engine_first_token(model)
    engine = build_engine(model, [greedy_first], 512)
    try:
        generation = engine.submit(PROMPT, SamplingConfig(temperature=0.0, max_tokens=10))
        assert list(generation) == []
        assert generation.finish_reason is FinishReason.STOP
    finally:
        engine.stop()


def engine_first_token(model) -> int:
    with torch.no_grad():
        return int(model(torch.tensor([PROMPT])).logits[0, -1].argmax())


def test_cancel_stops_generation(engine):
    generation = engine.submit(PROMPT, SamplingConfig(max_tokens=400))
    tokens = []
    for token in generation:
        tokens.append(token)
        if len(tokens) == 3:
            generation.cancel()
    assert generation.finish_reason is FinishReason.CANCELLED
    assert len(tokens) < 400


def test_context_length_caps_generation(model):
    engine = build_engine(model, [], len(PROMPT) + 4)
    try:
        generation = engine.submit(PROMPT, SamplingConfig(temperature=0.0, max_tokens=100))
        assert len(list(generation)) == 4
        assert generation.finish_reason is FinishReason.LENGTH
    finally:
        engine.stop()


def _kept(sorted_logits: list[float], top_k: int, top_p: float) -> list[bool]:
    filtered = filter_top_k_top_p(
        torch.tensor([sorted_logits]), torch.tensor([[top_k]]), torch.tensor([[top_p]])
    )
    return torch.isfinite(filtered)[0].tolist()


def test_top_k_keeps_k_best():
    assert _kept([5.0, 4.0, 3.0, 2.0, 1.0], top_k=2, top_p=1.0) == [True, True, False, False, False]


def test_top_p_keeps_smallest_nucleus():
    logits = torch.tensor([0.5, 0.3, 0.15, 0.05]).log().tolist()
    assert _kept(logits, top_k=0, top_p=0.8) == [True, True, False, False]
    # The best token always stays, however small top_p is.
    assert _kept(logits, top_k=0, top_p=0.01) == [True, False, False, False]


def test_repetition_penalty_discourages_seen_tokens():
    logits = torch.tensor([[2.0, 2.1, -1.0]] * 2)
    config = SamplingConfig(temperature=0.0, repetition_penalty=2.0)
    generators = [make_generator(0, torch.device("cpu")) for _ in range(2)]
    seen = [torch.tensor([False, False, False]), torch.tensor([False, True, False])]
    assert sample_rows(logits, [config, config], generators, seen) == [1, 0]


def test_each_row_of_a_mixed_step_is_sampled_as_it_would_be_alone():
    """Greedy, penalised, top-k, top-p and plain sampled rows in one vectorised call give
    what each row gives on its own with the same seed."""
    vocab = 50
    logits = torch.randn(5, vocab, generator=torch.Generator().manual_seed(0)) * 3
    configs = [
        SamplingConfig(temperature=0.0),
        SamplingConfig(temperature=0.0, repetition_penalty=1.5),
        SamplingConfig(temperature=0.9, top_k=5, seed=1),
        SamplingConfig(temperature=1.2, top_p=0.7, repetition_penalty=1.3, seed=2),
        SamplingConfig(temperature=0.7, seed=3),
    ]
    seen = [None, torch.rand(vocab) > 0.5, None, torch.rand(vocab) > 0.5, None]
    seeds = [None, None, 1, 2, 3]

    def generators(rows):
        return [make_generator(seeds[i], torch.device("cpu")) for i in rows]

    together = sample_rows(logits.clone(), configs, generators(range(5)), seen)
    alone = [
        sample_rows(logits[i : i + 1].clone(), [configs[i]], generators([i]), [seen[i]])[0]
        for i in range(5)
    ]
    assert together == alone
    top5 = set(logits[2].topk(5).indices.tolist())
    row = logits[2:3]
    draws = {
        sample_rows(row.clone(), [configs[2]], [torch.Generator().manual_seed(s)], [None])[0]
        for s in range(40)
    }
    assert draws <= top5 and len(draws) > 1
