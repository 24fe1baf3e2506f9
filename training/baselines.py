"""Yardsticks for a language model's loss: a unigram baseline and bits per byte.

Design decisions:
- The unigram baseline is the cross-entropy of the validation targets under the training
  tokens' frequencies (add-one smoothed): the loss of a model that learned which tokens
  are common but nothing about context. A trained model must clearly beat it.
- Bits per byte divide the summed loss by the UTF-8 bytes the target tokens stand for, so
  models with different tokenizers compare fairly; special tokens count zero bytes.
"""

from __future__ import annotations

import math

import numpy as np


def unigram_loss(train_tokens: np.ndarray, targets: np.ndarray, vocab_size: int) -> float:
    """Mean nats per target token under smoothed training-token frequencies."""
    counts = np.bincount(train_tokens, minlength=vocab_size).astype(np.float64) + 1.0
    log_probs = np.log(counts / counts.sum())
    return float(-log_probs[targets].mean())


def token_byte_lengths(tokenizer) -> np.ndarray:
    """UTF-8 bytes each id stands for (byte-level BPE: one character per byte)."""
    special = set(tokenizer.all_special_ids)
    lengths = np.zeros(len(tokenizer), dtype=np.int64)
    for token, index in tokenizer.get_vocab().items():
        if index not in special and index < len(lengths):
            lengths[index] = len(token)
    return lengths


def bits_per_byte(loss: float, targets: np.ndarray, byte_lengths: np.ndarray) -> float:
    total_bytes = int(byte_lengths[targets].sum())
    return loss * len(targets) / (math.log(2) * max(total_bytes, 1))
