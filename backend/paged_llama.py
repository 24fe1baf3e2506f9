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
- Answers may depend on the batch unless the model asks otherwise (`deterministic: true`
  in models.yaml), as vLLM's batch-invariant mode and SGLang's deterministic inference
  are opt-in. By default each linear runs once over the step's rows, so one stream
  computes one row. Matrix kernels pick their reduction order by the number of rows, so a
  row computed in a batch of 1 and in a batch of 40 can differ in the last bits, and
  greedy decoding can then diverge in a late token. In deterministic mode each linear
  runs over row blocks of at most `ROW_BLOCK` rows, and the last block is padded to a row
  count whose rows come out bit for bit as in a full block (tests/test_batching.py).
  Which counts those are depends on the BLAS library, the CPU and the dtype (here, MKL on
  AVX2: 12 to 16 rows in fp32, any count in bf16), so `RowPadding` measures it once per
  model with the model's own products (about a second) instead of assuming it; one
  stream then pays for 12 rows. The step is padded once, not each product.
- The kernel for plain products is measured too (`KernelChoice`): MKL's weight-major
  orientation (weight @ x.T) is faster for a few rows against a wide weight, `F.linear`
  for many; the crossing point is found at load with the model's own widest product.
- Projections of one input run as one product where they can: q/k/v, and the MLP's gate and
  up, when they are plain float `nn.Linear`s (no LoRA, no quantized weight). Their weights
  become views of one concatenated tensor, so the transformers model still works and no
  weight is held twice; fewer, wider products waste less of each call's fixed cost, which
  at decode sizes is most of it. The per-row reduction still runs over the same row
  blocks, so fusing changes no token.
- Rotary cosines and sines come from the model's own rotary module (so its scaling type
  is honoured), computed once for every position of the context.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from backend.engine import StepBatch

# Rows per matrix call at most (see the module docstring): the weight-major kernel is
# fastest per row at 16 rows, and 16-row blocks keep a prefill chunk as fast per row as
# 32-row blocks of `F.linear` were.
ROW_BLOCK = 16
SUPPORTED = ("llama",)


class UnsupportedModelError(ValueError):
    """The checkpoint's architecture has no paged forward pass here."""


class RowPadding:
    """The row counts a last row block may have, as measured on this machine's kernels."""

    def __init__(self, exact: set[int]) -> None:
        self.exact = sorted(exact | {ROW_BLOCK})

    def rows(self, rows: int) -> int:
        """The row count a step of `rows` rows is padded to."""
        tail = rows % ROW_BLOCK
        if tail == 0:
            return rows
        return rows - tail + next(n for n in self.exact if n >= tail)

    @classmethod
    def measure(cls, products: list[tuple[Callable[[torch.Tensor], torch.Tensor], int]], device,
                dtype) -> RowPadding:  # fmt: skip
        """Row counts n for which every product gives, for its first n rows, exactly what a
        full block gives for them. `products` are (function of the rows, input width)."""
        generator = torch.Generator().manual_seed(0)
        exact = set(range(1, ROW_BLOCK))
        for product, width in products:
            x = torch.randn(ROW_BLOCK, width, generator=generator).to(device=device, dtype=dtype)
            full = product(x)
            exact = {n for n in exact if torch.equal(product(x[:n]), full[:n])}
        return cls(exact)


def _pad(x: torch.Tensor, rows: int) -> torch.Tensor:
    return x if x.shape[0] == rows else F.pad(x, (0, 0) * (x.dim() - 1) + (0, rows - x.shape[0]))


def _weight_major(module: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """`module(x)` computed as weight @ x.T: for a few rows against a wide weight, MKL's
    kernel for this orientation ran 1.2-1.45x faster per decode step than `F.linear` at 1,
    16 and 32 rows here (2-core AVX2, fp32, steps alternating in one process). The result
    is a transposed view."""
    return torch.mm(module.weight, x.t()).t()


def _plain_linear(module: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return F.linear(x, module.weight)


class KernelChoice:
    """Up to how many rows the weight-major kernel beats `F.linear` on this machine."""

    TRIED = (1, 4, 16, 64, 256)

    def __init__(self, weight_major_rows: int) -> None:
        self.weight_major_rows = weight_major_rows

    def __call__(self, module: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
        kernel = _weight_major if x.shape[0] <= self.weight_major_rows else _plain_linear
        return kernel(module, x)

    @classmethod
    def measure(cls, module: torch.nn.Linear) -> KernelChoice:
        """The largest tried row count at which weight-major is faster (median of 5)."""
        generator = torch.Generator().manual_seed(0)
        best = 0
        for rows in cls.TRIED:
            x = torch.randn(rows, module.in_features, generator=generator).to(module.weight)
            if _median_seconds(_weight_major, module, x) < _median_seconds(
                _plain_linear, module, x
            ):
                best = rows
        return cls(best)


def _median_seconds(kernel, module: torch.nn.Linear, x: torch.Tensor) -> float:
    kernel(module, x)  # warm-up: first calls pay for allocation
    times = []
    for _ in range(5):
        started = time.perf_counter()
        kernel(module, x)
        times.append(time.perf_counter() - started)
    return sorted(times)[2]


class _Projection:
    """Linear layers that read the same input: one product when they can be fused."""

    def __init__(self, modules: list[torch.nn.Module]) -> None:
        self.modules = modules
        self.sizes = [m.out_features for m in modules]
        self.fused: torch.nn.Linear | None = None
        if all(_plain(m) for m in modules):
            weight = torch.cat([m.weight.detach() for m in modules])
            fused = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
            fused.weight = torch.nn.Parameter(weight, requires_grad=False)
            offset = 0
            for m, size in zip(modules, self.sizes, strict=True):
                m.weight = torch.nn.Parameter(weight[offset : offset + size], requires_grad=False)
                offset += size
            self.fused = fused

    def modules_called(self) -> list[torch.nn.Module]:
        return self.modules if self.fused is None else [self.fused]

    def __call__(self, linear, x: torch.Tensor) -> list[torch.Tensor]:
        if self.fused is None:
            return [linear(m, x) for m in self.modules]
        return list(linear(self.fused, x).split(self.sizes, dim=-1))


def _plain(module: torch.nn.Module) -> bool:
    """A float `nn.Linear` without bias: not LoRA-wrapped, not quantized (a quantized
    weight is a tensor subclass, or the module another class)."""
    return (
        type(module) is torch.nn.Linear
        and module.bias is None
        and type(module.weight.data) is torch.Tensor
        and module.weight.dtype.is_floating_point
    )


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class PagedLlama:
    """Runs packed steps of a Llama-family causal LM over its own preallocated KV cache."""

    def __init__(
        self, model: torch.nn.Module, num_blocks: int, block_size: int, deterministic: bool = False
    ) -> None:
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
        self.qkv = [
            _Projection([a.q_proj, a.k_proj, a.v_proj]) for a in (x.self_attn for x in self.layers)
        ]
        self.gate_up = [_Projection([x.mlp.gate_proj, x.mlp.up_proj]) for x in self.layers]
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
        self.plain = {id(m) for m in causal_lm.modules() if _plain(m)}
        self.plain.update(id(p.fused) for p in self.qkv + self.gate_up if p.fused is not None)
        self.deterministic = deterministic
        widest = self.gate_up[0].modules_called()[0]
        with torch.inference_mode():
            measurable = not deterministic and id(widest) in self.plain
            self.kernel = KernelChoice.measure(widest) if measurable else None
            self.padding = self._measure_padding(model) if deterministic else None

    def _measure_padding(self, model: torch.nn.Module) -> RowPadding:
        names = [*getattr(model, "peft_config", {}), "__base__"]
        names = (names * ROW_BLOCK)[:ROW_BLOCK]
        layer = self.layers[0]
        products = [
            *self.qkv[0].modules_called(),
            layer.self_attn.o_proj,
            *self.gate_up[0].modules_called(),
            layer.mlp.down_proj,
            self.lm_head,
        ]
        return RowPadding.measure(
            [(functools.partial(self._linear, m, adapters=names), m.in_features)
             for m in products],
            self.device,
            self.dtype,
        )  # fmt: skip

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
        rows = self._rows(tokens)  # padding rows ride along and are never read back
        adapters = batch.adapters
        if adapters is not None:
            adapters = adapters + ["__base__"] * (rows - tokens)
        h = self.embed(_pad(batch.token_ids, rows))
        positions = _pad(batch.positions, rows)
        linear = functools.partial(self._linear, adapters=adapters)
        cos = self.cos[positions][:, None, :]
        sin = self.sin[positions][:, None, :]
        for index, layer in enumerate(self.layers):
            attn = layer.self_attn
            x = layer.input_layernorm(h)
            q, k, v = self.qkv[index](linear, x)
            q = q.view(rows, self.heads, self.head_dim)
            k = k.view(rows, self.kv_heads, self.head_dim)
            v = v.view(rows, self.kv_heads, self.head_dim)
            q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
            keys, values = self.kv[index, 0], self.kv[index, 1]
            keys.index_copy_(0, batch.write_slots, k[:tokens])
            values.index_copy_(0, batch.write_slots, v[:tokens])
            out = self._attention(q, keys, values, batch)
            h = h + linear(attn.o_proj, out)
            x = layer.post_attention_layernorm(h)
            mlp = layer.mlp
            gate, up = self.gate_up[index](linear, x)
            h = h + linear(mlp.down_proj, mlp.act_fn(gate) * up)
        wanted = batch.logits_rows.numel()
        if wanted == 0:  # a prefill chunk that ends mid-prompt
            return torch.empty(0, self.vocab_size, device=self.device)
        picked = _pad(self.norm(h[batch.logits_rows]), self._rows(wanted))
        names = None
        if adapters is not None:
            names = [adapters[i] for i in batch.logits_rows.tolist()]
            names += ["__base__"] * (picked.shape[0] - wanted)
        return self._linear(self.lm_head, picked, names)[:wanted].float()

    def _rows(self, rows: int) -> int:
        return self.padding.rows(rows) if self.deterministic else rows

    def _linear(self, module, x: torch.Tensor, adapters: list[str] | None) -> torch.Tensor:
        """`module(x)`, over row blocks of at most `ROW_BLOCK` rows in deterministic mode
        (see the module docstring); `adapters` (a name per row) reach PEFT LoRA layers
        only."""
        if not self.deterministic:
            return self._product(module, x, adapters)
        outs = [
            self._product(module, x[start : start + ROW_BLOCK], adapters, start)
            for start in range(0, x.shape[0], ROW_BLOCK)
        ]
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def _product(self, module, rows: torch.Tensor, adapters: list[str] | None, start: int = 0):
        if id(module) in self.plain:
            return (self.kernel or _weight_major)(module, rows)
        if id(module) in self.lora and adapters is not None:
            return module(rows, adapter_names=adapters[start : start + rows.shape[0]])
        return module(rows)

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
