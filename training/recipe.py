"""`python -m training recipe` (`make train-scratch`): the whole from-scratch CPU recipe.

data -> tokenizer -> pretrain -> sft -> export -> registered in runs/models.yaml, sized to
finish in about 12 minutes on a lightly loaded 2-core CPU (measured; see the README).

Design decisions:
- Each stage is the ordinary command with the recipe's flags, run through the same
  command line parser, so the recipe is exactly what a person could type, stage by stage.
- Stages are idempotent and resumable: a finished stage (corpus manifest, tokenizer file,
  run.json with status completed) is reused, an interrupted training stage continues with
  `--resume`. Ctrl-C at any point loses at most the steps since the last checkpoint.
- The thread count is pinned (`--threads`, default: the cores this process may use), not
  taken from $OMP_NUM_THREADS: the loss depends on it (see training/loop.py), and the
  same command on the same machine must give the same model.
- The recipe's defaults favour a model that is clearly better than a unigram baseline and
  writes docs-like text within the time budget over one that is as good as possible: a
  4-layer, 256-wide GPT (about 4M parameters) seeing 1.6M tokens (0.7 epoch) of the
  Python docs, then 100 SFT steps.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from training.corpus import REPO_ROOT
from training.errors import TrainingError

MODEL_NAME = "scratch-gpt"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default="pydocs", help="corpus source (see `data --help`)")
    parser.add_argument("--runs", type=Path, default=REPO_ROOT / "runs", help="runs folder")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--pretrain-steps", type=int, default=400)
    parser.add_argument("--sft-steps", type=int, default=100)
    parser.add_argument("--optimizer", choices=["adamw", "muon"], default="adamw")
    parser.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="CPU threads for pretrain and SFT, fixed whatever $OMP_NUM_THREADS says: the "
        "loss depends on it (default: the cores this process may use, %(default)s here)",
    )
    parser.add_argument("--name", default=MODEL_NAME, help="name in runs/models.yaml")


def _stage(name: str, argv: list[str], timings: dict[str, float]) -> None:
    from training.__main__ import main

    print(f"\n=== {name}: python -m training {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    code = main(argv)
    timings[name] = time.perf_counter() - start
    if code == 130:
        print("recipe interrupted: rerun the same command to continue where it stopped")
        raise KeyboardInterrupt
    if code != 0:
        raise TrainingError(f"stage `{name}` failed (exit {code}); fix it and rerun the recipe")


def _status(run_dir: Path) -> str:
    path = run_dir / "run.json"
    return json.loads(path.read_text()).get("status", "") if path.is_file() else ""


def _train_stage(name: str, run_dir: Path, argv: list[str], timings: dict[str, float]) -> None:
    status = _status(run_dir)
    if status in ("completed", "early-stopped"):
        print(f"\n=== {name}: reusing the finished run in {run_dir}")
        timings[name] = 0.0
        return
    resume = ["--resume"] if (run_dir / "checkpoint.pt").is_file() else []
    _stage(name, argv + resume, timings)


def run(args: argparse.Namespace) -> None:
    from chatforge.journal import append_entry

    runs = args.runs
    corpus = runs / "data" / args.source.replace(":", "-").replace("/", "-")
    tokenizer = runs / "scratch" / "tokenizer"
    base, chat = runs / "scratch" / "base", runs / "scratch" / "chat"
    timings: dict[str, float] = {}
    start = time.perf_counter()
    if (corpus / "manifest.json").is_file():
        print(f"=== data: reusing {corpus}")
    else:
        _stage("data", ["data", "--source", args.source, "--out", str(corpus)], timings)
    if (tokenizer / "tokenizer.json").is_file():
        print(f"=== tokenizer: reusing {tokenizer}")
    else:
        argv = ["tokenizer", "--corpus", str(corpus), "--out", str(tokenizer)]
        _stage("tokenizer", argv + ["--vocab-size", str(args.vocab_size)], timings)
    shared = ["--corpus", str(corpus), "--seq-len", str(args.seq_len)]
    shared += ["--batch-size", str(args.batch_size), "--micro-batch-size", str(args.batch_size)]
    shared += ["--optimizer", args.optimizer, "--log-every", "10", "--threads", str(args.threads)]
    _train_stage(
        "pretrain",
        base,
        ["pretrain", "--tokenizer", str(tokenizer), "--out", str(base), *shared]
        + ["--depth", str(args.depth), "--max-steps", str(args.pretrain_steps)]
        + ["--warmup-steps", "30", "--eval-every", "100", "--eval-batches", "8"]
        + ["--save-every", "50", "--sample-tokens", "150"],
        timings,
    )
    _train_stage(
        "sft",
        chat,
        ["sft", "--base", str(base), "--out", str(chat), *shared]
        + ["--max-steps", str(args.sft_steps), "--eval-every", "50", "--eval-batches", "8"]
        + ["--save-every", "50"],
        timings,
    )
    export = chat / "hf"
    _stage(
        "export",
        ["export", "--run", str(chat), "--out", str(export), "--register", args.name]
        + ["--registry", str(runs / "models.yaml")],
        timings,
    )
    total = time.perf_counter() - start
    pretrained = json.loads((base / "run.json").read_text())
    tuned = json.loads((chat / "run.json").read_text())
    final = pretrained["final"]
    print("\n=== recipe summary")
    for name, seconds in timings.items():
        print(f"  {name:10s} {seconds / 60:6.1f} min")
    print(f"  {'total':10s} {total / 60:6.1f} min (this run; stages reused from earlier take 0)")
    print(
        f"  pretrain: val loss {final['val_loss']:.3f} nats/token, "
        f"{final['val_bits_per_byte']:.3f} bits/byte; unigram baseline "
        f"{final['unigram_val_loss']:.3f} nats/token, "
        f"{final['unigram_bits_per_byte']:.3f} bits/byte"
    )
    print(
        f"  sft: assistant-token val loss {tuned['final']['val_loss']:.3f} "
        f"(base model {tuned['final']['base_model_val_loss']:.3f})"
    )
    print(f"  serve it: python -m backend serve, then chat with model `{args.name}`")
    append_entry(
        "recipe",
        f"train-scratch -> {args.name}",
        {
            **{f"{k} min": v / 60 for k, v in timings.items()},
            "total min": total / 60,
            "val loss": final["val_loss"],
            "unigram val loss": final["unigram_val_loss"],
            "val bits/byte": final["val_bits_per_byte"],
            "sft val loss": tuned["final"]["val_loss"],
        },
        [base, chat, export, runs / "models.yaml"],
    )
