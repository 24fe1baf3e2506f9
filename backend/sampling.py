"""Next-token sampling: repetition penalty, temperature, top-k, top-p, seeded draws.

Design decisions:
- One function turns a step's [rows, vocab] logits into token ids (`sample_rows`), with
  every control vectorised over the rows (a batch of 64 costs a few tensor calls, not 64
  Python loops): the penalty as one `where` over the stacked presence masks, temperature
  as a column, top-k and top-p as masks over one descending sort. A row's token never
  depends on the other rows: every reduction runs along its own vocabulary.
- Temperature 0 means greedy (argmax), not a division by zero; greedy ignores top-k/top-p
  but keeps the repetition penalty, as transformers' `generate` does.
- The repetition penalty follows transformers (CTRL paper): positive logits are divided by
  the penalty, negative ones multiplied, over every token already in the sequence, prompt
  included. Matching it keeps greedy output identical to `model.generate`. The tokens seen
  are a boolean mask over the vocabulary, updated per token, so the work per step does not
  grow with the sequence.
- Randomness comes from a per-request `torch.Generator`: each sampled row draws one
  uniform number from its own generator and picks the token by inverse CDF over its sorted
  probabilities, so the same seed gives the same tokens whatever other requests run
  alongside, and the only per-row Python work is that one draw.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 0.7
    top_k: int = 0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = None
    repetition_penalty: float = 1.0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def make_generator(seed: int | None, device: torch.device) -> torch.Generator:
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def apply_repetition_penalty(
    logits: torch.Tensor, seen: torch.Tensor, penalty: torch.Tensor
) -> torch.Tensor:
    """`seen`: [rows, vocab] booleans of the tokens already in each sequence; `penalty`:
    [rows, 1]."""
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


def filter_top_k_top_p(
    sorted_logits: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor
) -> torch.Tensor:
    """Mask (to -inf) logits outside each row's top-k and top-p nucleus. `sorted_logits`:
    [rows, vocab] in descending order; `top_k` (0: no limit) and `top_p`: [rows, 1]."""
    rank = torch.arange(sorted_logits.shape[-1], device=sorted_logits.device)[None, :]
    drop = (top_k > 0) & (rank >= top_k)
    probs = sorted_logits.softmax(-1)
    # Drop a token when the tokens before it already reach top_p; the best always stays.
    drop |= (probs.cumsum(-1) - probs) >= top_p
    return sorted_logits.masked_fill(drop, float("-inf"))


def sample_rows(
    logits: torch.Tensor,
    configs: list[SamplingConfig],
    generators: list[torch.Generator],
    seen: list[torch.Tensor | None],
) -> list[int]:
    """The next token of every row of a [rows, vocab] step."""
    logits = logits.float()
    penalised = [i for i, c in enumerate(configs) if c.repetition_penalty != 1.0]
    if penalised:
        rows = torch.tensor(penalised, device=logits.device)
        penalty = torch.tensor([[configs[i].repetition_penalty] for i in penalised])
        masks = torch.stack([seen[i] for i in penalised]).to(logits.device)
        logits[rows] = apply_repetition_penalty(logits[rows], masks, penalty.to(logits.device))
    tokens = logits.argmax(-1).tolist()
    drawn = [i for i, c in enumerate(configs) if not c.greedy]
    if drawn:
        rows = torch.tensor(drawn, device=logits.device)
        column = functools.partial(torch.tensor, device=logits.device)
        temperature = column([[configs[i].temperature] for i in drawn])
        top_k = column([[configs[i].top_k] for i in drawn])
        top_p = column([[configs[i].top_p] for i in drawn])
        sorted_logits, order = (logits[rows] / temperature).sort(-1, descending=True)
        cumulative = filter_top_k_top_p(sorted_logits, top_k, top_p).softmax(-1).cumsum(-1)
        uniform = torch.cat([torch.rand(1, generator=generators[i]) for i in drawn])
        uniform = uniform.to(logits.device)[:, None] * cumulative[:, -1:]
        picked = torch.searchsorted(cumulative, uniform)
        picked = picked.clamp_(max=order.shape[-1] - 1)
        for i, token in zip(drawn, order.gather(1, picked)[:, 0].tolist(), strict=True):
            tokens[i] = token
    return tokens
