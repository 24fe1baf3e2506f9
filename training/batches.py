"""Token rows for training: fixed-length (input, target) pairs and the order they are seen in.

Design decisions:
- Pretraining and SFT share one shape: a table of rows of `seq_len + 1` token ids plus a
  mask of which positions count in the loss. Pretraining cuts one long token stream
  (documents joined by `<|endoftext|>`) into back-to-back windows with every position
  counted; SFT packs whole conversations into rows and counts only assistant tokens. The
  loop never needs to know which one it is training on.
- The order of rows is a pure function of (seed, step): epoch e is a permutation seeded by
  seed + e, and step s takes the next `batch_size` rows of it. Resuming at step s therefore
  needs no saved sampler state, and any number of processes agree on the order (each takes
  every world-th row of the step's batch).
- Steps use whole batches only: a trailing partial batch of an epoch is skipped, so every
  step has the same size and gradients of runs with different micro-batching match.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class TokenRows:
    tokens: np.ndarray  # (rows, seq_len + 1) int64
    mask: np.ndarray  # (rows, seq_len + 1) bool: position counts as a target

    @classmethod
    def from_stream(cls, stream: np.ndarray, seq_len: int) -> TokenRows:
        """Back-to-back windows over a token stream; window i covers [i*T, i*T + T]."""
        n = (len(stream) - 1) // seq_len
        idx = np.arange(n)[:, None] * seq_len + np.arange(seq_len + 1)[None, :]
        tokens = stream[idx].astype(np.int64) if n else np.zeros((0, seq_len + 1), np.int64)
        return cls(tokens, np.ones_like(tokens, dtype=bool))

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def seq_len(self) -> int:
        return self.tokens.shape[1] - 1

    def get(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets (-100 where the mask says the position does not count)."""
        rows = torch.from_numpy(self.tokens[np.asarray(indices, dtype=np.int64)])
        mask = torch.from_numpy(self.mask[np.asarray(indices, dtype=np.int64)])
        targets = rows[:, 1:].masked_fill(~mask[:, 1:], -100)
        return rows[:, :-1].contiguous(), targets.contiguous()

    def target_tokens(self, limit: int | None = None) -> np.ndarray:
        """The ids that count as targets in the first `limit` rows (for baselines)."""
        rows = self.tokens[:limit, 1:]
        return rows[self.mask[:limit, 1:]]


class RowOrder:
    """Which rows each optimizer step trains on."""

    def __init__(self, n_rows: int, batch_size: int, seed: int) -> None:
        self.n_rows, self.batch_size, self.seed = n_rows, batch_size, seed
        self.steps_per_epoch = n_rows // batch_size
        self._epoch = -1
        self._perm: np.ndarray | None = None

    def batch(self, step: int) -> np.ndarray:
        epoch, offset = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            self._perm = torch.randperm(self.n_rows, generator=generator).numpy()
            self._epoch = epoch
        start = offset * self.batch_size
        return self._perm[start : start + self.batch_size]
