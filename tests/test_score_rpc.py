"""The Score and RecordEval RPCs on a real server process (tiny models)."""

from __future__ import annotations

import json
import os
import time

import grpc
import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from backend.client import ChatClient
from backend.logprobs import continuation_logprobs
from backend.model_loader import load_models
from backend.registry import load_registry
from evals.targets import CheckpointTarget
from tests.helpers import metric_value


@pytest.fixture(scope="module")
def client(tiny_server):
    with ChatClient(tiny_server.target) as c:
        yield c


def test_score_matches_a_direct_forward_pass(client, tiny_model_dir):
    response = client.score(
        ["The quick brown fox.", "héllo wörld 🎉"], context="Say:", model="tiny"
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    context = [tokenizer.bos_token_id, *tokenizer("Say:", add_special_tokens=False)["input_ids"]]
    assert response.context_tokens == len(context) and response.model == "tiny"
    for text, scored in zip(
        ["The quick brown fox.", "héllo wörld 🎉"], response.scores, strict=True
    ):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([context + ids])).logits[0]
        logprobs = torch.log_softmax(logits, -1)
        expected = sum(float(logprobs[len(context) + i - 1, t]) for i, t in enumerate(ids))
        assert scored.tokens == len(ids)
        assert scored.logprob == pytest.approx(expected, abs=1e-3)


def test_score_with_a_chat_context_uses_the_chat_template(client, tiny_model_dir):
    messages = [{"role": "user", "content": "Capital?"}]
    chat = client.score(["Paris"], messages=messages)
    raw = client.score(["Paris"], context="Capital?")
    # ChatML: <|im_start|>user\nCapital?<|im_end|>\n<|im_start|>assistant\n
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    templated = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert chat.context_tokens == len(tokenizer(templated, add_special_tokens=False)["input_ids"])
    assert chat.context_tokens > raw.context_tokens
    assert chat.scores[0].tokens == raw.scores[0].tokens


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"continuations": []}, "continuations: give 1 to 32"),
        ({"continuations": [""]}, "continuations[0]: must be 1 to"),
        ({"continuations": ["x"], "context": "a", "messages": [{"role": "user", "content": "b"}]},
         "not both"),
        ({"continuations": ["word " * 6000]}, "beyond the model's context of 4096"),
        ({"continuations": ["x"], "model": "missing"}, "unknown model 'missing'"),
    ],
)  # fmt: skip
def test_bad_score_requests_are_refused(client, kwargs, message):
    with pytest.raises(grpc.RpcError) as info:
        client.score(**kwargs)
    assert message in info.value.details()
    expected = grpc.StatusCode.NOT_FOUND if "model" in kwargs else grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.code() == expected


def test_record_eval_lands_in_the_card_and_refuses_bad_names(client, tiny_model_dir):
    body = {"suite": "x", "items": [{"id": "a"}]}
    path = client.record_eval("rpc-test.json", json.dumps(body), model="tiny-b")
    try:
        card = client.get_model("tiny-b")
        assert {e.name: e.suite for e in card.eval_summaries}["rpc-test.json"] == "x"
        assert client.all_eval_rows("rpc-test.json", "tiny-b") == ['{"id": "a"}']
    finally:
        os.unlink(path)
    for name, body, message in [
        ("../escape.json", "{}", "not a plain file name"),
        ("notes.txt", "{}", "not a plain file name"),
        ("ok.json", "[1, 2]", "must be a JSON object"),
        ("ok.json", "{broken", "not JSON"),
    ]:
        with pytest.raises(grpc.RpcError) as info:
            client.record_eval(name, body, model="tiny-b")
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert message in info.value.details()


def test_scoring_interleaves_with_a_stream_on_the_engine_thread(client):
    idle = client.score(["The quick brown fox."], model="tiny").scores[0].logprob
    stream = client.chat("Tell me a long story", model="tiny", sampling={"max_tokens": 300})
    events = iter(stream)
    next(events)  # started: the generation is active on the engine
    during = client.score(["The quick brown fox."], model="tiny").scores[0].logprob
    rest = list(events)
    assert during == pytest.approx(idle, abs=1e-5)  # no state shared with the decode loop
    assert rest[-1].finished.usage.completion_tokens == 300


def test_a_score_call_that_gives_up_leaves_nothing_on_the_engine(client, tiny_server):
    continuations = ["The quick brown fox jumps over the lazy dog. " * 60] * 32  # ~30k tokens
    with pytest.raises(grpc.RpcError) as failure:
        client.score(continuations, context="Say:", model="tiny", timeout=0.3)
    assert failure.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    computed = metric_value(tiny_server, "chatforge_step_tokens_sum", model="tiny")
    time.sleep(1.0)
    # Within a step or two of the deadline the engine dropped the work: no more tokens.
    later = metric_value(tiny_server, "chatforge_step_tokens_sum", model="tiny")
    assert later - computed <= 2 * 256


def test_scoring_an_adapter_model_uses_its_adapter(tiny_model_dir, tmp_path):
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(tmp_path / "ada")  # random, non-zero LoRA
    registry = tmp_path / "models.yaml"
    registry.write_text(f"models:\n  tiny:\n    checkpoint: {tiny_model_dir}\n"
                        f"  ada:\n    base: tiny\n    adapter: {tmp_path / 'ada'}\n")  # fmt: skip
    loaded = {m.name: m for m in load_models(load_registry(registry).models)}
    engine = loaded["tiny"].engine  # one engine serves the base and its adapter
    context, continuation = [1, 5, 6, 7], [[8, 9, 10]]
    try:
        (served_base,) = engine.submit_score(context, continuation).result(60)
        (served_ada,) = engine.submit_score(context, continuation, loaded["ada"].adapter).result(60)
    finally:
        engine.stop()
    on_disk = CheckpointTarget(tmp_path / "ada")  # peft onto its base, no server
    (expected,) = continuation_logprobs(on_disk.lm, context, continuation)
    assert served_ada.logprob == pytest.approx(expected.logprob, abs=1e-4)
    assert served_ada.logprob != pytest.approx(served_base.logprob, abs=1e-3)
