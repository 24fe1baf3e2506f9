"""Scripted chat models: real transformers checkpoints whose greedy reply is a chosen text.

Output guardrails can only be tested end to end if the model says something worth
filtering (an email address, the system prompt). A random model will not, so these
models are wired by hand: every decoder layer's output projections are zero, so the
hidden state at a position is just its token's embedding, and the LM head maps the
embedding of each token of the script to the next one (the end-of-turn token after the
last). Whatever the prompt, the greedy reply is the script, token by token, through the
real engine, detokenizer and server.

A script must not repeat a token (a token has one successor); `make_scripted_models`
trains one BPE tokenizer on all scripts so that each word becomes one token, and refuses a
script that still repeats one. `make_scripted_ids` takes the reply as token ids instead,
for replies no text encodes to (a character cut into single-byte tokens).
"""

from __future__ import annotations

from pathlib import Path

import torch

from tests.tiny_model import make_tokenizer, save_checkpoint, tiny_llama


def make_scripted_models(folder: Path, scripts: dict[str, str]) -> dict[str, Path]:
    """One checkpoint per script under `folder/NAME`; returns NAME -> folder."""
    tokenizer = make_tokenizer(vocab_size=2000, texts=tuple(scripts.values()))
    return {
        name: make_scripted_ids(
            folder / name,
            tokenizer,
            tokenizer(script, add_special_tokens=False)["input_ids"],
            seed=i,
        )
        for i, (name, script) in enumerate(scripts.items())
    }


def make_scripted_ids(folder: Path, tokenizer, reply: list[int], seed: int = 0) -> Path:
    """A checkpoint in `folder` whose greedy reply is the ids `reply`, then end of turn."""
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "x"}], add_generation_prompt=True, tokenize=False
    )
    start = tokenizer(prompt, add_special_tokens=False)["input_ids"][-1]
    chain = [start, *reply, tokenizer.eos_token_id]
    if len(set(chain[:-1])) != len(chain) - 1:
        raise ValueError(f"script {tokenizer.decode(reply)!r} repeats a token; reword it")
    torch.manual_seed(seed)
    model = tiny_llama(tokenizer, layers=1, context=2048)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embeddings = model.model.embed_tokens.weight
        model.lm_head.weight.zero_()
        for current, following in zip(chain, chain[1:], strict=False):
            direction = embeddings[current] / embeddings[current].norm()
            model.lm_head.weight[following] = 20.0 * direction
    return save_checkpoint(folder, model, tokenizer)
