"""Tiny random chat models for fast tests: a byte-level BPE tokenizer with a ChatML
template and a 2-layer Llama, saved as a checkpoint folder that follows the contract."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_TEXT = [
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France? Paris is the capital of France.",
    "Python lists are mutable sequences; tuples are immutable.",
    "héllo wörld, naïve café, 世界 你好, emoji 🎉 and ∑ maths",
]


def make_tokenizer(vocab_size: int = 400, texts: tuple[str, ...] = ()) -> PreTrainedTokenizerFast:
    """A byte-level BPE with the chat special tokens, trained on `texts` plus a mixed sample."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator((list(texts) + _TEXT) * 20, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        bos_token="<|im_start|>",
        pad_token="<|endoftext|>",
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def make_tiny_model(folder: Path, seed: int = 0, context: int = 4096, layers: int = 2) -> Path:
    """Write a tiny random chat model to `folder` and return it."""
    tokenizer = make_tokenizer()
    torch.manual_seed(seed)
    model = tiny_llama(tokenizer, layers=layers, context=context)
    # Peaked logits, and an end-of-turn token that never wins: streams run exactly to
    # max_tokens, so tests control their length (engine tests cover the eos path).
    with torch.no_grad():
        model.lm_head.weight.mul_(50.0)
        model.lm_head.weight[tokenizer.eos_token_id] = 0.0
    return save_checkpoint(folder, model, tokenizer)


def tiny_llama(tokenizer, layers: int, context: int) -> LlamaForCausalLM:
    """A random 64-wide Llama sized for `tokenizer`, with untied embeddings."""
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=context,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)


def save_checkpoint(folder: Path, model: LlamaForCausalLM, tokenizer) -> Path:
    """Model, generation config and tokenizer in `folder`, as the server loads them."""
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
