"""Load a registry entry into a model, a tokenizer and an engine.

Design decisions:
- The server knows models only through the registry and the checkpoint contract: a folder
  transformers loads as it is. Nothing here imports training code.
- Device `auto` picks CUDA when present; dtype `auto` is bfloat16 on CUDA and float32 on the
  CPU (CPU bf16 matmuls are slower and less precise than fp32 on most laptops).
- End-of-turn ids come from both `generation_config.json` and the tokenizer: chat models
  often end a turn with a token (`<|im_end|>`) other than the tokenizer's eos.
- Adapters (`base` + `adapter`) never load their base twice: models are loaded in groups
  that share one base, one PEFT model holding every adapter of the group under the adapter
  model's name, and one engine. Each request carries its adapter's name and the engine
  passes it to that request's forward pass as PEFT's `adapter_names` (`__base__` for the
  plain base), so there is no global "active adapter" to switch: requests of different
  adapters interleave step by step in the one decode loop, each with its own KV cache,
  and later batching across requests can mix adapters in one forward pass.
- The engine's runner is `PagedLlama` (backend/paged_llama.py) over the loaded model's own
  modules; its KV cache is sized here from `kv_cache_mb`, capped at what `max_batch_size`
  sequences of the full context could use twice over (the rest would never be touched).
  Defaults differ by device: a CPU step is bound by reading the weights, so 32 rows and
  256 tokens a step keep a step short; a GPU takes far more of both.
- `engine:` (backend/registry.py) picks the native engine or OpenVINO GenAI
  (backend/openvino_engine.py over an export by backend/openvino_export.py). `auto` takes
  OpenVINO where it can run: `openvino_genai` imports, the device is an x86 CPU, no
  adapters and no native `quantization`; otherwise it loads native and logs why. A model
  with adapters is served natively (the OpenVINO engine has none yet), with a warning.
  A failed export falls back to the native engine with a warning naming the reason, so a
  model that served yesterday still serves. An OpenVINO model loads no torch weights.
- `quantization` is applied at load time with the library that does it: `int8` is torchao's
  int8 weight-only (CPU and CUDA), `int8-dynamic` torch's dynamic int8 of every Linear (CPU
  only; fast but it also quantizes activations, and on SmolLM2 longer answers degrade),
  `bnb-int8` and `nf4` are bitsandbytes on CUDA. A setting the machine cannot run fails
  with what is needed instead of loading something else.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from backend.engine import Engine, EngineConfig, StepStats
from backend.gguf_convert import prepare_gguf
from backend.openvino_engine import (
    OpenVinoEngine,
    cache_gigabytes,
    kv_bytes_per_token,
    open_pipeline,
)
from backend.openvino_export import ExportError, export_openvino
from backend.paged_llama import PagedLlama
from backend.registry import ModelSpec
from backend.text_codec import TextCodec

log = logging.getLogger("chatforge.models")

# Told the engine group's name (its base model) and what each step did: the metrics.
StepObserver = Callable[[str, StepStats], None]


@dataclass
class LoadedModel:
    spec: ModelSpec
    path: str  # the checkpoint folder (or hub id) the weights came from
    codec: TextCodec
    model: torch.nn.Module | None  # None when OpenVINO serves it (no torch weights)
    engine: Engine | OpenVinoEngine
    context_length: int
    device: torch.device
    dtype: torch.dtype
    adapter: str | None = None  # this model's adapter in the group's shared PEFT model
    weight_format: str = ""  # the OpenVINO export's, when OpenVINO serves it

    @property
    def engine_kind(self) -> str:
        return "openvino" if isinstance(self.engine, OpenVinoEngine) else "native"

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


def _require(package: str, quantization: str) -> None:
    if importlib.util.find_spec(package) is None:
        raise ValueError(f"quantization `{quantization}` needs the `{package}` package")


def quantization_config(spec: ModelSpec, device: torch.device, dtype: torch.dtype):
    """The transformers `quantization_config` for a spec (None: none, or applied after)."""
    q = spec.quantization
    if q in ("bnb-int8", "nf4"):
        if device.type != "cuda":
            raise ValueError(
                f"model `{spec.name}`: quantization `{q}` runs through bitsandbytes on a CUDA "
                f"GPU, and this model's device is {device}; use `int8` on the CPU, or "
                "`device: cuda` on a GPU host with `pip install bitsandbytes` ('.[cuda]')"
            )
        _require("bitsandbytes", q)
        from transformers import BitsAndBytesConfig

        if q == "bnb-int8":
            return BitsAndBytesConfig(load_in_8bit=True)
        return BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype
        )
    if q == "int8":
        _require("torchao", q)
        from torchao.quantization import Int8WeightOnlyConfig
        from transformers import TorchAoConfig

        return TorchAoConfig(Int8WeightOnlyConfig())
    if q == "int8-dynamic" and device.type != "cpu":
        raise ValueError(
            f"model `{spec.name}`: quantization `int8-dynamic` runs on the CPU only; "
            "use `int8`, `bnb-int8` or `nf4` on CUDA"
        )
    return None


def load_weights(spec: ModelSpec, path: str, device: torch.device, dtype: torch.dtype):
    """The model of a checkpoint folder, quantized as the spec says, on its device."""
    config = quantization_config(spec, device, dtype)
    if config is not None:
        return AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, quantization_config=config, device_map={"": str(device)}
        )
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)
    if spec.quantization == "int8-dynamic":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, torch.qint8)
    return model


BLOCK_SIZE = 16
# (max_batch_size, max_batch_tokens, kv_cache_mb) when models.yaml does not say.
_ENGINE_DEFAULTS = {"cpu": (32, 256, 1024), "cuda": (128, 2048, 8192)}


def engine_config(spec: ModelSpec, device: torch.device) -> tuple[EngineConfig, int]:
    """The engine settings of a model entry, and its KV cache budget in MiB."""
    rows, tokens, megabytes = _ENGINE_DEFAULTS.get(device.type, _ENGINE_DEFAULTS["cpu"])
    rows = spec.max_batch_size or rows
    config = EngineConfig(
        max_batch_size=rows,
        max_batch_tokens=max(spec.max_batch_tokens or tokens, rows),
        max_queue=spec.max_queue,
        prefix_cache=spec.prefix_cache,
    )
    return config, spec.kv_cache_mb or megabytes


def build_engine(
    model: torch.nn.Module,
    eos_ids: list[int],
    context_length: int,
    config: EngineConfig | None = None,
    kv_cache_mb: int = 1024,
    adapter_names: list[str] | None = None,
    on_step: Callable[[StepStats], None] | None = None,
    deterministic: bool = False,
) -> Engine:
    """A batching engine over `model`, with a KV cache of at most `kv_cache_mb`;
    `deterministic`: answers identical alone and batched (backend/paged_llama.py)."""
    config = config or EngineConfig()
    dtype = next(model.parameters()).dtype
    dtype = dtype if dtype.is_floating_point else torch.float32
    per_block = PagedLlama.bytes_per_block(model, BLOCK_SIZE, dtype)
    useful = 2 * config.max_batch_size * math.ceil(context_length / BLOCK_SIZE)
    blocks = min(kv_cache_mb * 2**20 // per_block, useful)
    runner = PagedLlama(model.eval(), max(blocks, 1), BLOCK_SIZE, deterministic)
    return Engine(runner, eos_ids, context_length, config, adapter_names or [], on_step=on_step)


def group_key(spec: ModelSpec) -> tuple:
    """Models with the same key share one base model and one engine."""
    if spec.adapter and spec.base_is_registered:
        return ("model", spec.base)
    if spec.adapter:
        settings = (spec.dtype, spec.quantization, spec.device, spec.max_context)
        engine = (spec.max_queue, spec.max_batch_size, spec.max_batch_tokens, spec.kv_cache_mb)
        return ("base", spec.base, *settings, *engine, spec.prefix_cache, spec.deterministic)
    return ("model", spec.name)


def load_models(
    specs: dict[str, ModelSpec], on_step: StepObserver | None = None
) -> Iterator[LoadedModel]:
    """Load every model of a registry, yielding each as soon as it is ready."""
    groups: dict[tuple, list[ModelSpec]] = {}
    for spec in specs.values():
        groups.setdefault(group_key(spec), []).append(spec)
    for key, members in groups.items():
        base = specs[key[1]] if key[0] == "model" else members[0]
        yield from _load_group(base, [m for m in members if m.adapter], on_step)


def load_model(spec: ModelSpec) -> LoadedModel:
    """One model on its own (an adapter model on a folder or hub base loads it privately)."""
    if spec.base_is_registered:
        raise ValueError(
            f"model `{spec.name}` shares the registered model `{spec.base}`: "
            "load the registry with load_models()"
        )
    return _load_group(spec, [spec] if spec.adapter else [])[0]


def _load_group(
    base: ModelSpec, adapters: list[ModelSpec], on_step: StepObserver | None = None
) -> list[LoadedModel]:
    path = checkpoint_path(base) if not base.adapter else _base_path(base)
    device = resolve_device(base.device)
    dtype = resolve_dtype(base.dtype, device)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if not tokenizer.chat_template:
        raise ValueError(f"model `{base.name}`: the tokenizer in {path} has no chat template")
    if use_openvino(base, device, adapters):
        served = _load_openvino(base, path, tokenizer, device, dtype, on_step)
        if served is not None:
            return [served]
    model = load_weights(base, path, device, dtype)
    if adapters:
        model = _attach_adapters(model, adapters, base)
    context = base.max_context or getattr(model.config, "max_position_embeddings", 2048)
    config, kv_cache_mb = engine_config(base, device)
    engine = build_engine(
        model,
        eos_token_ids(path, tokenizer),
        context,
        config,
        kv_cache_mb,
        [a.name for a in adapters],
        on_step=functools.partial(on_step, base.name) if on_step else None,
        deterministic=base.deterministic,
    )
    codec = TextCodec(tokenizer)
    loaded = [] if base.adapter else [
        LoadedModel(base, path, codec, model, engine, context, device, dtype)
    ]  # fmt: skip
    for spec in adapters:
        assert spec.adapter is not None
        loaded.append(
            LoadedModel(spec, spec.adapter, codec, model, engine, context, device, dtype, spec.name)
        )
    return loaded


def use_openvino(spec: ModelSpec, device: torch.device, adapters: list[ModelSpec]) -> bool:
    """Whether OpenVINO should serve `spec` (models.yaml `engine:`); says why not."""
    if spec.engine == "native":
        return False
    reasons = []
    if importlib.util.find_spec("openvino_genai") is None:
        reasons.append("the `openvino-genai` package is not installed")
    if device.type != "cpu" or platform.machine().lower() not in ("x86_64", "amd64"):
        reasons.append(
            f"OpenVINO serves on an x86 CPU and this is {device} on {platform.machine()}"
        )
    if spec.quantization != "none":
        reasons.append(f"`quantization: {spec.quantization}` is the native engine's")
    if adapters:
        reasons.append("it has adapters, which the OpenVINO engine does not serve")
    if not reasons:
        return True
    level = logging.WARNING if spec.engine == "openvino" or adapters else logging.INFO
    log.log(level, "model `%s`: served by the native engine: %s", spec.name, "; ".join(reasons))
    return False


def _load_openvino(
    spec: ModelSpec, path: str, tokenizer, device, dtype, on_step: StepObserver | None
) -> LoadedModel | None:
    """The model served by OpenVINO, or None (logged) when its export fails."""
    try:
        folder = export_openvino(path, spec.weight_format)
    except ExportError as exc:
        log.warning("model `%s`: OpenVINO export failed, serving natively: %s", spec.name, exc)
        return None
    config = AutoConfig.from_pretrained(path)
    context = spec.max_context or getattr(config, "max_position_embeddings", 2048)
    engine_settings, kv_cache_mb = engine_config(spec, device)
    capacity = cache_gigabytes(kv_cache_mb) * 2**30 // kv_bytes_per_token(folder)
    engine = OpenVinoEngine(
        open_pipeline(folder, engine_settings, kv_cache_mb),
        eos_token_ids(path, tokenizer),
        context,
        engine_settings,
        token_capacity=capacity,
        on_step=functools.partial(on_step, spec.name) if on_step else None,
    )
    codec = TextCodec(tokenizer)
    return LoadedModel(
        spec, path, codec, None, engine, context, device, dtype, None, spec.weight_format
    )


def _base_path(spec: ModelSpec) -> str:
    assert spec.base is not None
    if spec.base.startswith("/") and not Path(spec.base).is_dir():
        raise FileNotFoundError(f"model `{spec.name}`: base folder {spec.base} does not exist")
    return spec.base


def _attach_adapters(model, adapters: list[ModelSpec], base: ModelSpec):
    from peft import PeftModel

    peft_model = None
    for spec in adapters:
        assert spec.adapter is not None
        if not (Path(spec.adapter) / "adapter_config.json").is_file():
            raise FileNotFoundError(
                f"model `{spec.name}`: {spec.adapter} is not a PEFT adapter folder "
                "(no adapter_config.json)"
            )
        try:
            if peft_model is None:
                peft_model = PeftModel.from_pretrained(model, spec.adapter, adapter_name=spec.name)
            else:
                peft_model.load_adapter(spec.adapter, adapter_name=spec.name)
        except (ValueError, RuntimeError, KeyError) as exc:
            raise ValueError(
                f"model `{spec.name}`: cannot apply adapter {spec.adapter} to "
                f"`{base.name}` (quantization {base.quantization}): {exc}"
            ) from None
    return peft_model
