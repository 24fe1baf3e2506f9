"""A compact Llama forward pass over a paged KV cache, for the batching engine.

Design decisions:
- The weights stay in the transformers model the loader built: this module calls that
  model's own modules (embedding, RMSNorms, projections, MLP linears, LM head) and only
  replaces what batching needs replaced, the attention over the cache. So every way the
  loader can prepare a checkpoint keeps working unchanged: torchao int8 weight-only, torch's
  dynamic int8, bitsandbytes, and PEFT LoRA layers, whose `adapter_names` argument takes one
  adapter per row (`__base__` for none): rows of different adapters share one forward pass.
- One step is a packed batch: every scheduled token of every sequence (one per decoding
  sequence, a chunk per prefilling one) is a row of one [tokens, hidden] matrix, so each
  linear layer runs once per step over all of them. Attention is the only per-sequence
  part: decoding rows share one padded attention call, each prefill chunk has its own.
- The KV cache is preallocated once: per layer, keys and values for `num_blocks x
  block_size` token slots. The engine decides which slot each token's K/V goes to (its
  block table); this module only writes and gathers slots, it never allocates.
- Answers must not depend on the batch. Matrix kernels pick their reduction order by the
  number of rows, so a row computed in a batch of 1 and in a batch of 40 can differ in the
  last bits, and greedy decoding can then diverge. Each linear therefore runs over fixed
  row blocks: `ROW_BLOCK` rows at a time, the last block padded up to `MIN_ROWS`, so a
  token's result is the same whatever else is in the step (tests/test_batching.py). The
  step is padded once (`padded_rows`), not each matrix product.
- Rotary cosines and sines come from the model's own rotary module (so its scaling type
  is honoured), computed once for every position of the context.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from backend.engine import StepBatch

# Rows per matrix call and the least rows a call gets (see the module docstring): measured
# on MKL, every row count from 16 to 32 takes the same kernel path for our shapes.
ROW_BLOCK = 32
MIN_ROWS = 16
SUPPORTED = ("llama",)


class UnsupportedModelError(ValueError):
    """The checkpoint's architecture has no paged forward pass here."""


def padded_rows(rows: int) -> int:
    """The row count a step is padded to, once: every `ROW_BLOCK` block, the last included,
    then has at least `MIN_ROWS` rows (see the module docstring)."""
    tail = rows % ROW_BLOCK
    return rows if tail == 0 or tail >= MIN_ROWS else rows + MIN_ROWS - tail


def _pad(x: torch.Tensor, rows: int) -> torch.Tensor:
    return x if x.shape[0] == rows else F.pad(x, (0, 0) * (x.dim() - 1) + (0, rows - x.shape[0]))


def _linear(module: torch.nn.Module, x: torch.Tensor, adapters: list[str] | None):
    """`module(x)` over fixed row blocks of a padded step, so a row's result never depends
    on its batch. `adapters` (one name per row) only for PEFT LoRA layers."""
    kwargs = {}
    outs = []
    for start in range(0, x.shape[0], ROW_BLOCK):
        if adapters is not None:
            kwargs = {"adapter_names": adapters[start : start + ROW_BLOCK]}
        outs.append(module(x[start : start + ROW_BLOCK], **kwargs))
    return outs[0] if len(outs) == 1 else torch.cat(outs)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class PagedLlama:
    """Runs packed steps of a Llama-family causal LM over its own preallocated KV cache."""

    def __init__(self, model: torch.nn.Module, num_blocks: int, block_size: int) -> None:
        causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
        config = causal_lm.config
        if config.model_type not in SUPPORTED:
            raise UnsupportedModelError(
                f"the batching engine runs {', '.join(SUPPORTED)} checkpoints (SmolLM2, "
                f"models exported by `python -m training export`); this one is "
                f"`{config.model_type}`"
            )
        inner = causal_lm.model
        self.embed = inner.embed_tokens
        self.layers = list(inner.layers)
        self.norm = inner.norm
        self.lm_head = causal_lm.lm_head
        # PEFT wraps only the modules its config targets; only those take adapter names.
        self.lora = {id(m) for m in causal_lm.modules() if hasattr(m, "lora_A")}
        self.vocab_size = config.vocab_size
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.scale = self.head_dim**-0.5
        param = next(causal_lm.parameters())
        self.device = param.device
        # Quantized weights report int8; activations and the cache use the compute dtype.
        self.dtype = self.embed.weight.dtype
        self.block_size = block_size
        self.num_blocks = num_blocks
        slots = num_blocks * block_size
        self.kv = torch.zeros(
            len(self.layers), 2, slots, self.kv_heads, self.head_dim,
            dtype=self.dtype, device=self.device,
        )  # fmt: skip
        context = config.max_position_embeddings
        positions = torch.arange(context, device=self.device)[None]
        probe = torch.zeros(1, dtype=self.dtype, device=self.device)
        cos, sin = inner.rotary_emb(probe, positions)
        self.cos, self.sin = cos[0], sin[0]  # [context, head_dim]

    @staticmethod
    def bytes_per_block(model: torch.nn.Module, block_size: int, dtype: torch.dtype) -> int:
        causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
        config = causal_lm.config
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        per_token = config.num_hidden_layers * 2 * config.num_key_value_heads * head_dim
        return per_token * block_size * torch.tensor([], dtype=dtype).element_size()

    @torch.inference_mode()
    def forward(self, batch: StepBatch) -> torch.Tensor:
        """Write every token's K/V to its slot; return float32 logits for `logits_rows`."""
        tokens = batch.token_ids.shape[0]
        rows = padded_rows(tokens)  # padding rows ride along and are never read back
        adapters = batch.adapters
        if adapters is not None:
            adapters = adapters + ["__base__"] * (rows - tokens)
        h = self.embed(_pad(batch.token_ids, rows))
        positions = _pad(batch.positions, rows)
        cos = self.cos[positions][:, None, :]
        sin = self.sin[positions][:, None, :]
        for index, layer in enumerate(self.layers):
            attn = layer.self_attn
            x = layer.input_layernorm(h)
            q = self._linear(attn.q_proj, x, adapters).view(rows, self.heads, self.head_dim)
            k = self._linear(attn.k_proj, x, adapters).view(rows, self.kv_heads, self.head_dim)
            v = self._linear(attn.v_proj, x, adapters).view(rows, self.kv_heads, self.head_dim)
            q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
            keys, values = self.kv[index, 0], self.kv[index, 1]
            keys.index_copy_(0, batch.write_slots, k[:tokens])
            values.index_copy_(0, batch.write_slots, v[:tokens])
            out = self._attention(q, keys, values, batch)
            h = h + self._linear(attn.o_proj, out, adapters)
            x = layer.post_attention_layernorm(h)
            mlp = layer.mlp
            gate = mlp.act_fn(self._linear(mlp.gate_proj, x, adapters))
            up = self._linear(mlp.up_proj, x, adapters)
            h = h + self._linear(mlp.down_proj, gate * up, adapters)
        wanted = batch.logits_rows.numel()
        if wanted == 0:  # a prefill chunk that ends mid-prompt
            return torch.empty(0, self.vocab_size, device=self.device)
        picked = _pad(self.norm(h[batch.logits_rows]), padded_rows(wanted))
        names = None
        if adapters is not None:
            names = [adapters[i] for i in batch.logits_rows.tolist()]
            names += ["__base__"] * (picked.shape[0] - wanted)
        return self._linear(self.lm_head, picked, names)[:wanted].float()

    def _linear(self, module, x: torch.Tensor, adapters: list[str] | None) -> torch.Tensor:
        return _linear(module, x, adapters if id(module) in self.lora else None)

    def _attention(self, q, keys, values, batch: StepBatch) -> torch.Tensor:
        # Zeros: padding rows get no attention output and stay finite.
        out = torch.zeros(q.shape[0], self.heads * self.head_dim, dtype=q.dtype, device=q.device)
        group = batch.decode
        if group is not None:
            # [B, L, kv, d] -> [B, kv, L, d]; one query token per sequence.
            k = keys[group.slots].transpose(1, 2)
            v = values[group.slots].transpose(1, 2)
            query = q[group.rows][:, :, None, :]
            attended = F.scaled_dot_product_attention(
                query, k, v, attn_mask=group.mask, scale=self.scale, enable_gqa=True
            )
            out[group.rows] = attended.reshape(group.rows.shape[0], -1)
        for chunk in batch.prefills:
            rows = slice(chunk.start, chunk.start + chunk.length)
            k = keys[chunk.slots].transpose(0, 1)[None]
            v = values[chunk.slots].transpose(0, 1)[None]
            query = q[rows].transpose(0, 1)[None]
            attended = F.scaled_dot_product_attention(
                query, k, v, attn_mask=chunk.mask, scale=self.scale, enable_gqa=True
            )
            out[rows] = attended[0].transpose(0, 1).reshape(chunk.length, -1)
        return out
