"""The one writer of a checkpoint's `metrics.jsonl` (DESIGN §4), for pretraining, SFT and
fine-tuning alike.

Design decisions:
- One row per logged step, appended and flushed as it is logged, so a crashed run keeps
  its curve and a reader (the model card) sees rows while the run goes on.
- A fresh run starts the file empty; a resumed run keeps only the rows at or before the
  step of the checkpoint it resumes from: the steps after it are trained again and logged
  again, so without the trim every such step would appear twice in the curve. A line that
  is not a row (a write cut short by a crash) is dropped with them.
- Fields without a value (no val loss on a train-only step) are left out of the row, not
  written as null.
- Under DDP only rank 0 writes (`enabled`); the other ranks hold a writer that does nothing,
  so the training loop needs no rank checks of its own.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    def __init__(self, folder: Path, resume_step: int | None = None, enabled: bool = True):
        self.path, self.enabled = Path(folder) / METRICS_FILE, enabled
        if not enabled:
            return
        kept = []
        if resume_step is not None and self.path.is_file():
            for line in self.path.read_text().splitlines():
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    if json.loads(line)["step"] <= resume_step:
                        kept.append(line)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("".join(line + "\n" for line in kept))

    def write(self, row: dict) -> None:
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps({k: v for k, v in row.items() if v is not None}) + "\n")
