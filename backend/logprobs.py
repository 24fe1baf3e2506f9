"""Log-likelihood of continuations after a context under a causal LM.

Design decisions:
- A pure function of a transformers model and token ids: the engine calls it on its own
  thread for the `Score` RPC, and the evals' checkpoint-dir target calls the same function,
  so a model scores identically whether it is served or loaded from disk.
- One forward pass per continuation (a batch of one, like the engine's decode steps), with
  `logits_to_keep` so only the positions that predict the continuation are projected onto
  the vocabulary: a 2,000-token perplexity chunk does not materialise 2,000 x 49k logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ContinuationLogprob:
    logprob: float  # sum over the continuation's tokens, in nats
    tokens: int
    greedy: bool  # every continuation token was the argmax


def start_token_id(tokenizer) -> int | None:
    """The token a raw-text context starts from: BOS, or EOS for tokenizers without one."""
    if tokenizer.bos_token_id is not None:
        return tokenizer.bos_token_id
    return tokenizer.eos_token_id


@torch.inference_mode()
def continuation_logprobs(
    model: torch.nn.Module,
    context_ids: Sequence[int],
    continuations: Sequence[Sequence[int]],
    **forward_kwargs,
) -> list[ContinuationLogprob]:
    """`forward_kwargs` go to every forward pass (the engine's `adapter_names`)."""
    if not context_ids:
        raise ValueError("the context needs at least one token to predict the first one from")
    device = next(model.parameters()).device
    out = []
    for continuation in continuations:
        if not continuation:
            raise ValueError("a continuation must have at least one token")
        ids = torch.tensor([[*context_ids, *continuation]], device=device)
        # The last len+1 positions: position i predicts token i+1, the final one predicts
        # past the end and is dropped.
        keep = len(continuation) + 1
        logits = model(input_ids=ids, logits_to_keep=keep, **forward_kwargs).logits[0, :-1]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        target = torch.tensor(continuation, device=device)
        picked = logprobs.gather(1, target[:, None])[:, 0]
        out.append(
            ContinuationLogprob(
                logprob=float(picked.sum()),
                tokens=len(continuation),
                greedy=bool((logprobs.argmax(-1) == target).all()),
            )
        )
    return out
