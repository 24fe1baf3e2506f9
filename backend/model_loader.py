"""Load a registry entry into a model, a tokenizer and an engine.

Design decisions:
- The server knows models only through the registry and the checkpoint contract: a folder
  transformers loads as it is. Nothing here imports training code.
- Device `auto` picks CUDA when present; dtype `auto` is bfloat16 on CUDA and float32 on the
  CPU (CPU bf16 matmuls are slower and less precise than fp32 on most laptops).
- End-of-turn ids come from both `generation_config.json` and the tokenizer: chat models
  often end a turn with a token (`<|im_end|>`) other than the tokenizer's eos.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from backend.engine import Engine
from backend.gguf_convert import prepare_gguf
from backend.registry import ModelSpec
from backend.text_codec import TextCodec


@dataclass
class LoadedModel:
    spec: ModelSpec
    path: str  # the checkpoint folder (or hub id) the weights came from
    codec: TextCodec
    model: torch.nn.Module
    engine: Engine
    context_length: int
    device: torch.device
    dtype: torch.dtype

    @property
    def name(self) -> str:
        return self.spec.name


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype)


def eos_token_ids(path: str, tokenizer) -> list[int]:
    ids: set[int] = set()
    try:
        eos = GenerationConfig.from_pretrained(path).eos_token_id
    except OSError:
        eos = None
    if isinstance(eos, int):
        ids.add(eos)
    elif eos:
        ids.update(eos)
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return sorted(ids)


def checkpoint_path(spec: ModelSpec) -> str:
    if spec.gguf:
        return str(prepare_gguf(spec.gguf))
    assert spec.checkpoint is not None  # the registry guarantees one source
    if spec.checkpoint.startswith("/") and not Path(spec.checkpoint).is_dir():
        raise FileNotFoundError(
            f"model `{spec.name}`: checkpoint folder {spec.checkpoint} does not exist"
        )
    return spec.checkpoint


def load_model(spec: ModelSpec) -> LoadedModel:
    path = checkpoint_path(spec)
    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if not tokenizer.chat_template:
        raise ValueError(f"model `{spec.name}`: the tokenizer in {path} has no chat template")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)
    context = spec.max_context or getattr(model.config, "max_position_embeddings", 2048)
    engine = Engine(
        model,
        eos_token_ids(path, tokenizer),
        context_length=context,
        max_queue=spec.max_queue,
        max_active=spec.max_active,
    )
    return LoadedModel(spec, path, TextCodec(tokenizer), model, engine, context, device, dtype)
