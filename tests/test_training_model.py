"""Our GPT: gradient accumulation is exact, and the Llama export computes the same logits."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoModelForCausalLM

from tests.tiny_model import make_tokenizer
from training.export import to_llama
from training.loop import accumulate_gradients
from training.model import GPT, GPTConfig
from training.optim import build_optimizers, lr_multiplier


def tiny_gpt(vocab: int = 96, seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    settings = dict(n_layer=2, n_embd=32, n_head=4, n_kv_head=2, intermediate_size=64)
    return GPT(GPTConfig(vocab_size=vocab, max_seq_len=32, **{**settings, **overrides}))


def test_four_micro_batches_of_8_give_the_gradients_of_one_batch_of_32():
    model = tiny_gpt()
    other = copy.deepcopy(model)
    torch.manual_seed(1)
    rows = torch.randint(0, 96, (32, 17))
    inputs, targets = rows[:, :-1], rows[:, 1:].clone()
    targets[torch.rand(targets.shape) < 0.3] = -100  # masked positions, as in SFT
    count = int((targets != -100).sum())
    loss_a = accumulate_gradients(model, inputs, targets, 8, count)
    loss_b = accumulate_gradients(other, inputs, targets, 32, count)
    assert torch.allclose(loss_a, loss_b, rtol=1e-5)
    for (name, a), (_, b) in zip(model.named_parameters(), other.named_parameters(), strict=True):
        assert a.grad is not None and torch.count_nonzero(a.grad) > 0, name
        assert torch.allclose(a.grad, b.grad, atol=1e-6, rtol=1e-4), name
    # and the gradient is that of the mean loss per target token
    other.zero_grad()
    loss_sum, n = other(inputs, targets)
    (loss_sum / n).backward()
    assert torch.allclose(
        model.blocks[0].attn.wq.weight.grad, other.blocks[0].attn.wq.weight.grad, atol=1e-6
    )


@pytest.mark.parametrize("tie", [True, False])
def test_llama_export_has_the_same_logits(tmp_path, tie):
    tokenizer = make_tokenizer()
    model = tiny_gpt(vocab=len(tokenizer), tie_embeddings=tie)
    with torch.no_grad():  # non-trivial norm gains, so a mapping mistake cannot hide
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.uniform_(0.5, 1.5)
    model.eval()
    hf = to_llama(model, tokenizer)
    hf.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    assert type(reloaded).__name__ == "LlamaForCausalLM"
    ids = torch.randint(0, len(tokenizer), (3, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model(ids)
        theirs = reloaded(input_ids=ids).logits
    assert (ours - theirs).abs().max().item() < 1e-4
    assert reloaded.config.tie_word_embeddings == tie
    assert reloaded.num_parameters() == model.num_parameters()


def test_depth_sizing_and_invalid_shapes():
    config = GPTConfig.from_depth(6, vocab_size=1000)
    assert (config.n_layer, config.n_embd, config.n_head, config.n_kv_head) == (6, 384, 6, 3)
    assert config.head_dim == 64
    with pytest.raises(ValueError, match="not divisible"):
        GPT(GPTConfig(vocab_size=10, n_embd=30, n_head=4, n_kv_head=2))
    model = tiny_gpt()
    with pytest.raises(ValueError, match="max_seq_len"):
        model(torch.zeros((1, 33), dtype=torch.long))


def test_muon_takes_block_matrices_and_adamw_the_rest():
    model = tiny_gpt()
    muon, adamw = build_optimizers(model, "muon", 1e-3, 0.02, 0.1, (0.9, 0.95))
    assert isinstance(muon, torch.optim.Muon) and isinstance(adamw, torch.optim.AdamW)
    muon_params = {id(p) for g in muon.param_groups for p in g["params"]}
    block_matrices = {
        id(p) for n, p in model.named_parameters() if n.startswith("blocks.") and p.ndim == 2
    }
    assert muon_params == block_matrices
    adamw_params = {id(p) for g in adamw.param_groups for p in g["params"]}
    assert id(model.tok_emb.weight) in adamw_params and not adamw_params & muon_params
    decayed = {id(p) for g in adamw.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert {id(p) for p in model.parameters() if p.ndim == 1}.isdisjoint(decayed)


def test_schedule_warms_up_then_decays():
    cosine = [lr_multiplier(s, 100, 10, "cosine", 0.1) for s in range(100)]
    linear = [lr_multiplier(s, 100, 10, "linear", 0.0) for s in range(100)]
    assert cosine[0] == pytest.approx(0.1) and cosine[9] == pytest.approx(1.0)
    assert cosine[10] == pytest.approx(1.0) and cosine[-1] == pytest.approx(0.1, abs=0.01)
    assert all(a >= b for a, b in zip(cosine[10:], cosine[11:], strict=False))
    assert linear[55] == pytest.approx(0.5, abs=0.02)
    assert lr_multiplier(50, 100, 10, "constant", 0.1) == 1.0
