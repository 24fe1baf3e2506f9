"""Model cards: what a loaded model is and what its checkpoint folder says about it.

Design decisions:
- The card is read from the checkpoint contract (DESIGN §4): `run.json`, `metrics.jsonl`
  and `evals/*.json` beside the weights. The UI reads training curves and eval results
  through `GetModel`, so a UI host needs no access to the checkpoint files. Of the eval
  results the card carries summaries only; their rows come from GetEvalRows
  (backend/eval_files.py).
- Files are read when a card is asked for, not cached at start, so an eval written while
  the server runs shows up at once.
- A malformed metrics row is skipped rather than failing the card: a half-written last
  line of a run in progress must not break `GetModel`.
- The lineage follows `base` in each run.json (a folder, or for a fine-tune the resolved
  base's `path`) to the runs a model descends from, so a from-scratch chat model shows its
  pretraining curve beside its SFT curve. A relative `base` is tried from the server's
  working directory, then from the run's own folder; the walk stops at a folder without a
  run.json, at a hub id, at a loop, or after MAX_LINEAGE runs.
- The card carries the model's default sampling (models.yaml `sampling:`) with the reason
  it was chosen, so a client starts from the values the server would use.
- The card says which engine serves the model (`native` or `openvino`) and, for OpenVINO,
  the export's weight format; an OpenVINO model has no torch module, so its architecture
  and parameter count come from the checkpoint's config and safetensors headers.
- `record_eval` is the one writer (the `RecordEval` RPC): it writes into `evals/` through a
  temporary file and a rename, so `GetModel` never reads half a results file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from transformers import AutoConfig

from backend import eval_files
from backend.model_loader import LoadedModel
from chat.v1 import chat_pb2

MAX_LINEAGE = 8
_METRIC_FIELDS = ("epoch", "tokens_seen", "train_loss", "val_loss", "lr", "tokens_per_second")


def _metrics(folder: Path) -> list[chat_pb2.TrainingMetric]:
    path = folder / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
            metric = chat_pb2.TrainingMetric(step=int(row["step"]))
            for key in (*_METRIC_FIELDS, "flops"):
                if row.get(key) is not None:
                    setattr(metric, key, type(getattr(metric, key))(row[key]))
        except (ValueError, KeyError, TypeError):
            continue
        rows.append(metric)
    return rows


def _run_info(folder: Path) -> dict:
    try:
        info = json.loads((folder / "run.json").read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _parent(folder: Path, info: dict) -> Path | None:
    base = info.get("base")
    if isinstance(base, dict):  # a fine-tune records its resolved base model
        base = base.get("path")
    if not isinstance(base, str) or not base:
        return None
    for candidate in (Path(base).expanduser(), folder / base):
        if (candidate / "run.json").is_file():
            return candidate.resolve()
    return None


def lineage(folder: Path) -> list[chat_pb2.TrainingStage]:
    """The runs `folder` descends from, oldest first (not including `folder` itself)."""
    stages: list[chat_pb2.TrainingStage] = []
    seen = {folder.resolve()}
    parent = _parent(folder, _run_info(folder))
    while parent is not None and parent not in seen and len(stages) < MAX_LINEAGE:
        seen.add(parent)
        info = _run_info(parent)
        stages.append(
            chat_pb2.TrainingStage(
                name=parent.name,
                kind=str(info.get("kind", "")),
                metrics=_metrics(parent),
                run_json=(parent / "run.json").read_text(),
            )
        )
        parent = _parent(parent, info)
    return stages[::-1]


def record_eval(folder: Path, name: str, text: str) -> Path:
    """Write one eval result into the checkpoint's evals/ folder (name already validated)."""
    evals_dir = folder / "evals"
    evals_dir.mkdir(exist_ok=True)
    path = evals_dir / name
    tmp = evals_dir / f".{name}.tmp"
    tmp.write_text(text)
    tmp.replace(path)
    return path


def _parameters(folder: Path) -> int:
    """The checkpoint's parameter count from its safetensors headers (no weights read)."""
    from safetensors import safe_open

    total = 0
    for path in folder.glob("*.safetensors"):
        with safe_open(path, "np") as weights:
            for name in weights.keys():  # noqa: SIM118 (safe_open is not a mapping)
                total += math.prod(weights.get_slice(name).get_shape())
    return total


def build_card(loaded: LoadedModel, is_default: bool, full: bool) -> chat_pb2.ModelCard:
    folder = Path(loaded.path)
    if loaded.model is not None:
        config = loaded.model.config
        parameters = sum(p.numel() for p in loaded.model.parameters())
    else:  # OpenVINO serves it: the checkpoint's own config and weight headers
        config = AutoConfig.from_pretrained(loaded.path)
        parameters = _parameters(folder)
    run_json = folder / "run.json"
    card = chat_pb2.ModelCard(
        name=loaded.name,
        architecture=(config.architectures or [type(loaded.model).__name__])[0],
        parameters=parameters,
        engine=loaded.engine_kind,
        weight_format=loaded.weight_format,
        quantization=loaded.spec.quantization,
        dtype=str(loaded.dtype).removeprefix("torch."),
        device=str(loaded.device),
        source=loaded.spec.gguf or loaded.spec.checkpoint or loaded.spec.adapter or "",
        is_default=is_default,
        context_length=loaded.context_length,
        vocab_size=config.vocab_size,
        run_json=run_json.read_text() if run_json.is_file() else "",
        default_sampling=chat_pb2.SamplingParams(**loaded.spec.sampling.config().__dict__),
        default_sampling_note=loaded.spec.sampling.why,
    )
    if full:
        card.metrics.extend(_metrics(folder))
        card.eval_summaries.extend(eval_files.summaries(folder))
        card.lineage.extend(lineage(folder))
    return card
