"""The sampling rules and the engine's decode loop, on a tiny random model."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from backend.engine import FinishReason
from backend.model_loader import build_engine
from backend.sampling import SamplingConfig, filter_top_k_top_p, make_generator, sample_next


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


def test_top_k_keeps_k_best():
    logits = torch.tensor([1.0, 5.0, 3.0, 4.0, 2.0])
    kept = filter_top_k_top_p(logits, top_k=2, top_p=1.0)
    assert torch.isfinite(kept).tolist() == [False, True, False, True, False]


def test_top_p_keeps_smallest_nucleus():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    kept = filter_top_k_top_p(probs.log(), top_k=0, top_p=0.8)
    assert torch.isfinite(kept).tolist() == [True, True, False, False]
    # The best token always stays, however small top_p is.
    kept = filter_top_k_top_p(probs.log(), top_k=0, top_p=0.01)
    assert torch.isfinite(kept).tolist() == [True, False, False, False]


def test_repetition_penalty_discourages_seen_tokens():
    logits = torch.tensor([2.0, 2.1, -1.0])
    config = SamplingConfig(temperature=0.0, repetition_penalty=2.0)
    generator = make_generator(0, torch.device("cpu"))
    assert sample_next(logits, None, config, generator) == 1
    assert sample_next(logits, torch.tensor([False, True, False]), config, generator) == 0
