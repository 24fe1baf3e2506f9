"""Shared set-up for the training tests: a tiny corpus, tokenizer and GPT settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
FIXTURE = Path(__file__).parent / "corpus"

# A GPT small enough that a step takes milliseconds.
TINY_MODEL = ["--n-layer", "2", "--n-embd", "32", "--n-head", "4", "--n-kv-head", "2"]
TINY_MODEL += ["--intermediate-size", "64"]
TINY_TRAIN = ["--seq-len", "16", "--batch-size", "4", "--micro-batch-size", "2"]
TINY_TRAIN += ["--warmup-steps", "2", "--log-every", "1", "--eval-batches", "2"]


def run_training(*args: str, env: dict | None = None, launcher: list[str] | None = None):
    """Run `python -m training ARGS` (or under `launcher`, e.g. torchrun) and return it."""
    command = (launcher or [sys.executable]) + ["-m", "training", *args]
    return subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, env={**os.environ, **(env or {})}
    )
