"""Optimizers and the learning-rate schedule.

Design decisions:
- AdamW and Muon both come from `torch.optim` (Muon is in PyTorch since 2.9); nothing is
  hand-written. Muon orthogonalises the update of 2-D weight matrices, so with `muon` the
  matrices inside the transformer blocks go to Muon and everything else (embeddings, the
  head, norm gains) to AdamW, as Muon's authors prescribe.
- Weight decay applies to matrices only; decaying norm gains or embeddings pulls them
  toward zero for no benefit.
- The schedule is a multiplier of each group's base learning rate: linear warmup, then
  cosine or linear decay to `min_lr_ratio`, or constant. It is a pure function of the step,
  so a resumed run recomputes it instead of restoring scheduler state.
"""

from __future__ import annotations

import math

import torch

from training.model import GPT


def build_optimizers(
    model: GPT,
    kind: str,
    lr: float,
    muon_lr: float,
    weight_decay: float,
    betas: tuple[float, float],
    fused: bool = False,
) -> list[torch.optim.Optimizer]:
    seen: set[int] = set()
    matrices, others, block_matrices = [], [], []
    for name, param in model.named_parameters():
        if id(param) in seen:  # tied embedding / head
            continue
        seen.add(id(param))
        if param.ndim == 2 and name.startswith("blocks."):
            block_matrices.append(param)
        elif param.ndim == 2:
            matrices.append(param)
        else:
            others.append(param)
    extra = {"fused": True} if fused else {}
    if kind == "adamw":
        groups = [
            {"params": block_matrices + matrices, "weight_decay": weight_decay},
            {"params": others, "weight_decay": 0.0},
        ]
        return [torch.optim.AdamW(groups, lr=lr, betas=betas, **extra)]
    if kind == "muon":
        adamw = torch.optim.AdamW(
            [
                {"params": matrices, "weight_decay": weight_decay},
                {"params": others, "weight_decay": 0.0},
            ],
            lr=lr,
            betas=betas,
            **extra,
        )
        muon = torch.optim.Muon(block_matrices, lr=muon_lr, weight_decay=weight_decay)
        return [muon, adamw]
    raise ValueError(f"unknown optimizer {kind!r}: use adamw or muon")


def lr_multiplier(
    step: int, total_steps: int, warmup_steps: int, decay: str, min_lr_ratio: float
) -> float:
    """Learning-rate factor for the optimizer step with index `step` (0-based)."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if decay == "constant":
        return 1.0
    span = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    if decay == "cosine":
        shape = 0.5 * (1 + math.cos(math.pi * progress))
    elif decay == "linear":
        shape = 1 - progress
    else:
        raise ValueError(f"unknown decay {decay!r}: use cosine, linear or constant")
    return min_lr_ratio + (1 - min_lr_ratio) * shape


def set_lr(optimizers: list[torch.optim.Optimizer], multiplier: float) -> None:
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group.setdefault("base_lr", group["lr"])
            group["lr"] = group["base_lr"] * multiplier
