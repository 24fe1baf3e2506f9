"""Next-token sampling: repetition penalty, temperature, top-k, top-p, seeded draws.

Design decisions:
- One function turns a logits row into a token id (`sample_next`), so the engine, the
  benchmarks and the tests share the exact rule; `sample_rows` applies it to a step's rows,
  with the greedy rows without a penalty (the common case) in one vectorised argmax. A row's
  token never depends on the other rows: every reduction runs along its own vocabulary.
- Temperature 0 means greedy (argmax), not a division by zero; greedy ignores top-k/top-p
  but keeps the repetition penalty, as transformers' `generate` does.
- The repetition penalty follows transformers (CTRL paper): positive logits are divided by
  the penalty, negative ones multiplied, over every token already in the sequence, prompt
  included. Matching it keeps greedy output identical to `model.generate`. The tokens seen
  are a boolean mask over the vocabulary, updated per token, so the work per step does not
  grow with the sequence.
- Randomness comes from a per-request `torch.Generator`: the same seed gives the same
  tokens whatever other requests run alongside.
"""

from __future__ import annotations

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
    logits: torch.Tensor, seen: torch.Tensor | None, penalty: float
) -> torch.Tensor:
    """`seen`: a boolean mask over the vocabulary of the tokens already in the sequence."""
    if penalty == 1.0 or seen is None:
        return logits
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


def filter_top_k_top_p(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Mask (to -inf) every logit outside the top-k and outside the top-p nucleus."""
    if top_k > 0 and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # Drop a token when the tokens before it already reach top_p; the best always stays.
        drop_sorted = (cumulative - sorted_logits.softmax(-1)) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(0, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(
    logits: torch.Tensor,
    seen: torch.Tensor | None,
    config: SamplingConfig,
    generator: torch.Generator,
) -> int:
    """Pick the next token id from a 1-D logits row."""
    logits = apply_repetition_penalty(logits.float(), seen, config.repetition_penalty)
    if config.greedy:
        return int(torch.argmax(logits))
    logits = filter_top_k_top_p(logits / config.temperature, config.top_k, config.top_p)
    probs = logits.softmax(-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def sample_rows(
    logits: torch.Tensor,
    configs: list[SamplingConfig],
    generators: list[torch.Generator],
    seen: list[torch.Tensor | None],
) -> list[int]:
    """The next token of every row of a [rows, vocab] step."""
    tokens = [0] * len(configs)
    plain = [i for i, c in enumerate(configs) if c.greedy and c.repetition_penalty == 1.0]
    if plain:
        for i, token in zip(plain, logits[plain].float().argmax(-1).tolist(), strict=True):
            tokens[i] = token
    for i in sorted(set(range(len(configs))) - set(plain)):
        tokens[i] = sample_next(logits[i], seen[i], configs[i], generators[i])
    return tokens
