"""Shared set-up for the training tests: a tiny corpus, tokenizer and GPT settings."""

from __future__ import annotations

import contextlib
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
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=child_env(env))


@contextlib.contextmanager
def one_thread():
    """Run in-process training of tiny models on one thread, then restore the setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_here(*args: str) -> int:
    """`python -m training ARGS` in this process (no interpreter start-up); its exit code."""
    from training.__main__ import main

    with one_thread():
        return main(list(args))


def child_env(extra: dict | None = None) -> dict:
    """One thread per process: tiny models spend their time in thread barriers otherwise,
    which is ruinous on a shared 2-core machine."""
    return {**os.environ, "OMP_NUM_THREADS": "1", **(extra or {})}
