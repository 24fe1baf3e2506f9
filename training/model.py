"""Our own readable GPT: a decoder-only transformer in one screen of PyTorch.

Architectural choices, and why:
- Rotary position embeddings (RoPE, "rotate half" layout): relative positions with no
  learned table, and the layout the Llama family uses, so our weights map one-to-one onto
  `LlamaForCausalLM` for serving.
- RMSNorm before each sub-layer (pre-norm) and once before the head: stable training
  without warmup tricks; RMSNorm is LayerNorm without the mean and bias, cheaper and as good.
- Grouped-query attention (fewer key/value heads than query heads): a smaller KV cache at
  inference for little loss, computed by `scaled_dot_product_attention`, which picks the
  fused flash / memory-efficient kernel the hardware has.
- No biases anywhere: they add parameters and nothing measurable at this scale.
- A gated MLP (SwiGLU: down(silu(gate(x)) * up(x))): better loss per FLOP than a plain
  GELU MLP; chosen over ReLU² because it is what Llama computes, so export is exact.
- Tied input embedding and output head by default: at small sizes the embedding is a large
  share of the parameters, and tying saves it without hurting loss.
- Sizing by `depth` like nanochat: width = depth x aspect (64), head size 64, so a single
  number scales the model and the sweep can compare depths at fixed compute.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


def summed_loss(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy over the targets that count (-100 is ignored) and their number;
    the loop divides the two after accumulating micro-batches, so any split of a batch
    gives the same gradient."""
    loss = F.cross_entropy(
        logits.float().view(-1, logits.shape[-1]),
        targets.reshape(-1),
        ignore_index=-100,
        reduction="sum",
    )
    return loss, (targets != -100).sum()


@dataclass
class GPTConfig:
    vocab_size: int
    n_layer: int = 4
    n_embd: int = 256
    n_head: int = 4
    n_kv_head: int = 2
    intermediate_size: int = 688
    max_seq_len: int = 512
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @classmethod
    def from_depth(
        cls,
        depth: int,
        vocab_size: int,
        max_seq_len: int = 512,
        aspect: int = 64,
        head_dim: int = 64,
        kv_ratio: int = 2,
    ) -> GPTConfig:
        """Width = depth x aspect; heads of `head_dim`; a KV head per `kv_ratio` heads."""
        n_embd = depth * aspect
        n_head = max(1, n_embd // head_dim)
        n_kv_head = n_head // kv_ratio if n_head % kv_ratio == 0 else n_head
        hidden = int(8 * n_embd / 3)
        return cls(
            vocab_size=vocab_size,
            n_layer=depth,
            n_embd=n_embd,
            n_head=n_head,
            n_kv_head=n_kv_head,
            intermediate_size=(hidden + 15) // 16 * 16,
            max_seq_len=max_seq_len,
        )

    def validate(self) -> None:
        problems = []
        if self.n_embd % self.n_head:
            problems.append(f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        if self.n_head % self.n_kv_head:
            problems.append(f"n_head {self.n_head} is not divisible by n_kv_head {self.n_kv_head}")
        if self.head_dim % 2:
            problems.append(f"head size {self.head_dim} must be even for rotary embeddings")
        if problems:
            raise ValueError("; ".join(problems))

    def to_dict(self) -> dict:
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.type_as(x)


def rotary_tables(head_dim: int, length: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))
    angles = torch.outer(torch.arange(length, dtype=torch.float), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = (
            config.n_head,
            config.n_kv_head,
            config.head_dim,
        )
        self.wq = nn.Linear(config.n_embd, config.n_head * self.head_dim, bias=False)
        self.wk = nn.Linear(config.n_embd, config.n_kv_head * self.head_dim, bias=False)
        self.wv = nn.Linear(config.n_embd, config.n_kv_head * self.head_dim, bias=False)
        self.wo = nn.Linear(config.n_head * self.head_dim, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        q = self.wq(x).view(batch, length, self.n_head, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(batch, length, self.n_kv_head, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(batch, length, self.n_kv_head, self.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        out = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, enable_gqa=self.n_kv_head != self.n_head
        )
        return self.wo(out.transpose(1, 2).reshape(batch, length, -1))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.gate = nn.Linear(config.n_embd, config.intermediate_size, bias=False)
        self.up = nn.Linear(config.n_embd, config.intermediate_size, bias=False)
        self.down = nn.Linear(config.intermediate_size, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(config.n_embd, config.norm_eps)
        self.attn = Attention(config)
        self.mlp_norm = RMSNorm(config.n_embd, config.norm_eps)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = RMSNorm(config.n_embd, config.norm_eps)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight
        cos, sin = rotary_tables(config.head_dim, config.max_seq_len, config.rope_theta)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 style: N(0, 0.02), residual output projections scaled by 1/sqrt(2 layers)."""
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, param in self.named_parameters():
            if name.endswith("norm.weight"):
                nn.init.ones_(param)
            elif name.endswith(("attn.wo.weight", "mlp.down.weight")):
                nn.init.normal_(param, std=residual_std)
            else:
                nn.init.normal_(param, std=0.02)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits for `idx` (batch, length); with `targets`, the summed cross-entropy over
        positions whose target is not -100 and the number of such positions."""
        length = idx.shape[1]
        if length > self.config.max_seq_len:
            raise ValueError(f"sequence of {length} tokens > max_seq_len {self.config.max_seq_len}")
        x = self.tok_emb(idx)
        cos, sin = self.cos[:length].to(x.dtype), self.sin[:length].to(x.dtype)
        for block in self.blocks:
            x = block(x, cos, sin)
        logits = self.lm_head(self.norm(x))
        if targets is None:
            return logits
        return summed_loss(logits, targets)

    def num_parameters(self, embeddings: bool = True) -> int:
        total = sum(p.numel() for p in self.parameters())
        return total if embeddings else total - self.tok_emb.weight.numel()

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token: 6 x (weights touched per token) + attention scores
        (the PaLM / nanochat estimate); the embedding lookup is not a matmul."""
        c = self.config
        matmul_params = self.num_parameters(embeddings=False) + (
            c.vocab_size * c.n_embd if c.tie_embeddings else 0
        )
        return 6 * matmul_params + 12 * c.n_layer * c.n_embd * seq_len

    @torch.no_grad()
    def generate(
        self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 0.8, top_k: int = 50
    ) -> torch.Tensor:
        """Plain sampling without a KV cache: enough for printing samples after training."""
        for _ in range(max_new_tokens):
            logits = self(idx[:, -self.config.max_seq_len :])[:, -1, :]
            if temperature <= 0:
                next_id = logits.argmax(-1, keepdim=True)
            else:
                logits = logits / temperature
                kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
                next_id = torch.multinomial(F.softmax(logits, -1), 1)
            idx = torch.cat([idx, next_id], dim=1)
        return idx
