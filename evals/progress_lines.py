"""`python -m evals run --progress jsonl`: a run's progress as JSON lines on stdout.

This is the machine-readable face of a run, for a program that starts the run as a child
process and relays it: the server's `RunEval` RPC does (backend/eval_runs.py), which is
how the server runs suites without importing any eval code. One JSON object per line,
flushed at once, with an `event` key:

- `{"event": "started", "total": N, "done": D}`: the items are known (D > 0 on --resume);
- `{"event": "item", "done": D, "total": N, "item": ID, "error": TEXT}`: one item finished
  (`error` is empty unless its RPC failed);
- `{"event": "finished", "run": NAME, "results": PATH, "model_copy": PATH or null}`: the
  last line: the run folder's name, its results.json, and where the copy in the model's
  evals/ went (null when it could not be stored).

Nothing else goes to stdout in this mode; tqdm's bar and any error go to stderr as usual.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

from evals.results import Row
from evals.runner import RunOutcome


class JsonlProgress:
    """A runner progress callback writing the lines above to `out`."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out

    def _emit(self, **line) -> None:
        self.out.write(json.dumps(line, ensure_ascii=False) + "\n")
        self.out.flush()

    def __call__(self, done: int, total: int, row: Row | None) -> None:
        if row is None:
            self._emit(event="started", total=total, done=done)
        else:
            self._emit(event="item", done=done, total=total, item=row.id, error=row.error)

    def finished(self, outcome: RunOutcome) -> None:
        self._emit(
            event="finished",
            run=outcome.run_dir.name,
            results=str(outcome.results_path),
            model_copy=outcome.model_copy,
        )
