"""Training checkpoints: written atomically, read back with a clear error when they do not fit.

Design decisions:
- `torch.save` goes to a temporary file in the same folder, then `os.replace` renames it
  over the old checkpoint: a crash mid-write leaves the previous checkpoint intact.
- A checkpoint holds everything a run needs to continue exactly: model weights, optimizer
  states (which carry each group's base learning rate), the step, the early-stopping
  counters and the settings that shape the trajectory. The data order and schedule are
  functions of the step, so they need no state.
- Resuming with different trajectory settings would silently produce a different run, so
  it is refused with the list of what differs.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from training.errors import TrainingError

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"


def save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load(path: Path) -> dict:
    if not path.is_file():
        raise TrainingError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file
        raise TrainingError(f"{path} is not a readable checkpoint ({exc})") from None


def check_same(saved: dict, wanted: dict, what: str, path: Path) -> None:
    diffs = [
        f"{k}: {saved.get(k)!r} -> {wanted.get(k)!r}" for k in wanted if saved.get(k) != wanted[k]
    ]
    if diffs:
        raise TrainingError(
            f"cannot resume from {path}: the {what} differ ({'; '.join(diffs)}). "
            "Pass the same settings to continue, or a new --out to start another run."
        )
