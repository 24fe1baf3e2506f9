"""The training side of models.yaml: find the checkpoint behind a model name, and register
the models a run produces in `runs/models.yaml`.

Design decisions:
- training/ never imports backend/, and the registry file is a contract like the checkpoint
  folder: this module only reads the `models:` and `include:` keys it needs to turn a name
  into a folder (the backend's validator stays the one judge of the file) and writes
  entries in the same format.
- `--base`/`--model` is, in order: an existing folder; a converted model in
  `$CHATFORGE_HOME/models/NAME` (where the server keeps the default model after converting
  its GGUF); a `checkpoint:` entry of the registry; or a hub id `org/name`. A GGUF entry that
  was never converted says which command converts it.
- Runs register in `runs/models.yaml` (included by the committed models.yaml), one entry
  per produced model, replacing an entry of the same name and keeping the rest, so the
  committed registry is never rewritten by a run. Paths are written relative to that file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from chatforge.paths import chatforge_home
from training.errors import TrainingError

REPO_ROOT = Path(__file__).resolve().parent.parent
REGISTRY = REPO_ROOT / "models.yaml"
RUNS_REGISTRY = REPO_ROOT / "runs" / "models.yaml"


@dataclass
class ResolvedModel:
    given: str  # what the user typed
    path: str  # a checkpoint folder, or a hub id
    registry_name: str | None = None  # set when `given` names a registered model

    @property
    def is_local(self) -> bool:
        return Path(self.path).is_dir()


def _read(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TrainingError(f"{path}: cannot read the model registry ({exc})") from None
    return data if isinstance(data, dict) else {}


def registry_entries(registry: Path = REGISTRY) -> dict[str, tuple[dict, Path]]:
    """name -> (entry, the file it came from), following `include:`."""
    if not registry.is_file():
        return {}
    main = _read(registry)
    entries = {name: (spec, registry) for name, spec in (main.get("models") or {}).items()}
    for pattern in main.get("include") or []:
        for included in sorted(registry.parent.glob(pattern)):
            for name, spec in (_read(included).get("models") or {}).items():
                entries.setdefault(name, (spec, included))
    return entries


def resolve_model(given: str, registry: Path = REGISTRY) -> ResolvedModel:
    """A model name, folder or hub id -> where its weights are."""
    folder = Path(given).expanduser()
    if folder.is_dir():
        return ResolvedModel(given, str(folder.resolve()))
    converted = chatforge_home() / "models" / given
    entries = registry_entries(registry)
    if "/" not in given and (converted / "config.json").is_file():
        return ResolvedModel(given, str(converted), given if given in entries else None)
    if given in entries:
        spec, source = entries[given]
        spec = spec if isinstance(spec, dict) else {}
        if spec.get("checkpoint"):
            local = (source.parent / Path(spec["checkpoint"]).expanduser()).resolve()
            return ResolvedModel(given, str(local) if local.is_dir() else spec["checkpoint"], given)
        if spec.get("gguf"):
            raise TrainingError(
                f"model `{given}` is a GGUF source that has not been converted yet: run "
                "`python -m backend prepare-default` (the default model) or start the server "
                "once, then pass the converted folder"
            )
        raise TrainingError(f"model `{given}` in {source} has no checkpoint to train from")
    if given.count("/") == 1 and not given.startswith((".", "/", "~")):
        return ResolvedModel(given, given)  # a hub id; loading it needs the network
    raise TrainingError(
        f"{given!r} is not a folder, a model in {registry}, a converted model in "
        f"{converted.parent} or a hub id (org/name); for the default model run "
        "`python -m backend prepare-default` first"
    )


def register(name: str, entry: dict, registry: Path = RUNS_REGISTRY) -> Path:
    """Add or replace `name` in a run registry file; paths in `entry` become relative."""
    data = _read(registry) if registry.is_file() else {}
    models = data.get("models") or {}
    for key in ("checkpoint", "adapter", "base"):
        value = entry.get(key)
        if value and Path(value).is_absolute():
            entry[key] = os.path.relpath(value, registry.parent)
    models[name] = entry
    data["models"] = models
    registry.parent.mkdir(parents=True, exist_ok=True)
    tmp = registry.with_suffix(".yaml.tmp")
    tmp.write_text(
        "# Written by training commands (python -m training ...); edit freely.\n"
        + yaml.safe_dump(data, sort_keys=False)
    )
    tmp.replace(registry)
    return registry
