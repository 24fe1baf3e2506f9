"""`python -m training pretrain`: train our GPT from scratch on a corpus's train split.

Design decisions:
- The corpus is tokenized at start (the Rust tokenizer does megabytes per second) into one
  stream per split, documents separated by `<|endoftext|>`; no token cache to go stale.
- The run folder is self-contained: the tokenizer is copied into `tokenizer/`, so `sft`
  and `export` need only the folder.
- After training the run is judged against a unigram baseline on the very validation
  tokens it was measured on, in nats per token and bits per byte, and a sample is printed:
  a loss number alone does not show whether the model writes docs-like text.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import torch

from chatforge.corpus_files import load_documents
from chatforge.journal import current_command
from training import checkpoint
from training.baselines import bits_per_byte, token_byte_lengths, unigram_loss
from training.batches import TokenRows
from training.bpe import ENDOFTEXT
from training.corpus import REPO_ROOT, read_manifest
from training.distributed import is_main_process
from training.errors import TrainingError
from training.loop import (
    TrainConfig,
    TrainResult,
    add_training_arguments,
    config_from_args,
    train,
    write_run_json,
)
from training.model import GPT, GPTConfig

TOKENIZER_DIR = "tokenizer"


def load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    path = Path(path)
    if not (path / "tokenizer.json").is_file():
        raise TrainingError(
            f"no tokenizer in {path}: train one with `python -m training tokenizer` "
            "or pass --tokenizer"
        )
    return AutoTokenizer.from_pretrained(path)


def token_stream(tokenizer, texts: list[str]) -> np.ndarray:
    separator = tokenizer.convert_tokens_to_ids(ENDOFTEXT)
    stream: list[int] = []
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        stream.extend(ids)
        stream.append(separator)
    return np.asarray(stream, dtype=np.int64)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model size (--depth, or every explicit dimension)")
    group.add_argument("--depth", type=int, default=4, help="layers; width = depth x aspect")
    group.add_argument("--aspect", type=int, default=64, help="width per layer of depth")
    group.add_argument("--head-dim", type=int, default=64)
    group.add_argument("--kv-ratio", type=int, default=2, help="query heads per key/value head")
    group.add_argument("--n-layer", type=int)
    group.add_argument("--n-embd", type=int)
    group.add_argument("--n-head", type=int)
    group.add_argument("--n-kv-head", type=int)
    group.add_argument("--intermediate-size", type=int)
    group.add_argument("--context", type=int, help="longest sequence (default --seq-len)")


def model_config_from_args(args: argparse.Namespace, vocab_size: int) -> GPTConfig:
    context = args.context or args.seq_len
    if context < args.seq_len:
        raise TrainingError(f"--context {context} is shorter than --seq-len {args.seq_len}")
    explicit = [args.n_layer, args.n_embd, args.n_head, args.n_kv_head, args.intermediate_size]
    if any(v is not None for v in explicit):
        if any(v is None for v in explicit):
            raise TrainingError(
                "explicit sizes need all of --n-layer --n-embd --n-head --n-kv-head "
                "--intermediate-size (or use --depth)"
            )
        config = GPTConfig(
            vocab_size=vocab_size,
            n_layer=args.n_layer,
            n_embd=args.n_embd,
            n_head=args.n_head,
            n_kv_head=args.n_kv_head,
            intermediate_size=args.intermediate_size,
            max_seq_len=context,
        )
    else:
        config = GPTConfig.from_depth(
            args.depth, vocab_size, context, args.aspect, args.head_dim, args.kv_ratio
        )
    try:
        config.validate()
    except ValueError as exc:
        raise TrainingError(f"model size: {exc}") from None
    return config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", type=Path, default=REPO_ROOT / "runs/data/pydocs")
    parser.add_argument("--tokenizer", type=Path, default=REPO_ROOT / "runs/scratch/tokenizer")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs/scratch/base")
    parser.add_argument("--sample-tokens", type=int, default=120, help="sample length at the end")
    add_model_arguments(parser)
    add_training_arguments(parser)


def sample_text(model: GPT, tokenizer, prompt: str, tokens: int, seed: int = 0) -> str:
    """A seeded sample continuing `prompt`, decoded."""
    torch.manual_seed(seed)
    ids = torch.tensor([tokenizer.encode(prompt, add_special_tokens=False)])
    model.eval()
    out = model.generate(ids, tokens, temperature=0.8, top_k=40)
    return tokenizer.decode(out[0].tolist(), skip_special_tokens=False)


def load_trained(folder: Path) -> GPT:
    """The best weights of a run folder (the last ones if it never validated)."""
    path = folder / checkpoint.BEST
    if not path.is_file():
        path = folder / checkpoint.CHECKPOINT
    saved = checkpoint.load(path)
    model = GPT(GPTConfig(**saved["model_config"]))
    model.load_state_dict(saved["model"])
    return model


def judge(
    result: TrainResult,
    cfg: TrainConfig,
    tokenizer,
    train_tokens: np.ndarray,
    val_rows: TokenRows,
) -> dict:
    """Unigram baseline and bits per byte on the validation targets the run measured."""
    targets = val_rows.target_tokens(cfg.eval_batches * cfg.batch_size)
    lengths = token_byte_lengths(tokenizer)
    unigram = unigram_loss(train_tokens, targets, len(tokenizer))
    best = result.best_val_loss
    return {
        "val_loss": best,
        "unigram_val_loss": unigram,
        "val_bits_per_byte": bits_per_byte(best, targets, lengths),
        "unigram_bits_per_byte": bits_per_byte(unigram, targets, lengths),
        "val_targets": int(len(targets)),
        "val_perplexity": math.exp(best) if best < 50 else math.inf,
    }


def report(
    kind: str, result: TrainResult, headline: str, numbers: dict, sample: str, out: Path
) -> None:
    """Print the outcome of a run and append it to the daily log."""
    from chatforge.journal import append_entry

    print(
        f"{kind} {result.status} at step {result.step}/{result.total_steps} "
        f"(epoch {result.epoch:.2f}, {result.tokens_seen / 1e6:.2f} M tokens, "
        f"{result.duration_s / 60:.1f} min)"
    )
    print(headline)
    print(f"sample:\n{sample}\n")
    common = {
        "status": result.status,
        "steps": result.step,
        "epochs": round(result.epoch, 3),
        "M tokens": result.tokens_seen / 1e6,
        "parameters": result.parameters,
        "minutes": result.duration_s / 60,
    }
    title = f"{result.parameters / 1e6:.2f}M-parameter GPT"
    append_entry(kind, title, {**common, **numbers}, [out])


def headline(judged: dict) -> str:
    return (
        f"val loss {judged['val_loss']:.4f} nats/token "
        f"({judged['val_bits_per_byte']:.3f} bits/byte) "
        f"vs unigram baseline {judged['unigram_val_loss']:.4f} "
        f"({judged['unigram_bits_per_byte']:.3f} bits/byte) on {judged['val_targets']} tokens"
    )


@dataclasses.dataclass
class CorpusRows:
    """A corpus's train and val splits, tokenized and cut into rows of `seq_len + 1`."""

    train_tokens: np.ndarray
    val_tokens: np.ndarray
    train_rows: TokenRows
    val_rows: TokenRows
    val_docs: list


def corpus_rows(tokenizer, corpus: Path, seq_len: int) -> CorpusRows:
    """Pretraining and the sweep read their data the same way, with the same checks."""
    train_docs = load_documents(corpus, "train")
    val_docs = load_documents(corpus, "val")
    if not train_docs or not val_docs:
        raise TrainingError(f"{corpus} needs train and val documents to pretrain")
    train_tokens = token_stream(tokenizer, [d.text for d in train_docs])
    val_tokens = token_stream(tokenizer, [d.text for d in val_docs])
    val_rows = TokenRows.from_stream(val_tokens, seq_len)
    if len(val_rows) == 0:
        raise TrainingError(
            f"the val split has {len(val_tokens)} tokens, fewer than one row of --seq-len "
            f"{seq_len}: lower --seq-len or give the corpus a larger --val-fraction"
        )
    train_rows = TokenRows.from_stream(train_tokens, seq_len)
    return CorpusRows(train_tokens, val_tokens, train_rows, val_rows, val_docs)


def run(args: argparse.Namespace) -> None:
    tokenizer = load_tokenizer(args.tokenizer)
    if args.epochs is None and args.max_steps is None:
        args.epochs = 1.0
    cfg = config_from_args(args, args.out)
    model_config = model_config_from_args(args, len(tokenizer))
    data = corpus_rows(tokenizer, args.corpus, cfg.seq_len)
    train_tokens, val_tokens, val_docs = data.train_tokens, data.val_tokens, data.val_docs
    train_rows, val_rows = data.train_rows, data.val_rows
    manifest = read_manifest(args.corpus)
    meta = {
        "kind": "pretrain",
        "command": current_command(),
        "data": {
            "corpus": str(args.corpus),
            "content_hash": manifest.get("content_hash"),
            "tokenizer": str(args.tokenizer),
            "train_tokens": int(len(train_tokens)),
            "val_tokens": int(len(val_tokens)),
            "train_rows": len(train_rows),
            "val_rows": len(val_rows),
        },
    }
    cfg.out.mkdir(parents=True, exist_ok=True)
    if not (cfg.out / TOKENIZER_DIR / "tokenizer.json").is_file():
        tokenizer.save_pretrained(cfg.out / TOKENIZER_DIR)
    result = train(cfg, model_config, train_rows, val_rows, meta)
    if result.status == "interrupted":
        print(f"interrupted at step {result.step}; continue with the same command and --resume")
        raise KeyboardInterrupt
    if not is_main_process():
        return
    judged = judge(result, cfg, tokenizer, train_tokens, val_rows)
    model = load_trained(cfg.out)
    prompt = val_docs[0].title + "\n"
    sample = sample_text(model, tokenizer, prompt, args.sample_tokens, cfg.seed)
    run_json = json.loads((cfg.out / "run.json").read_text())
    run_json.update(final=judged, sample=sample, result=dataclasses.asdict(result))
    write_run_json(cfg.out, run_json)
    numbers = {
        "val loss": judged["val_loss"],
        "unigram val loss": judged["unigram_val_loss"],
        "val bits/byte": judged["val_bits_per_byte"],
    }
    report("pretrain", result, headline(judged), numbers, sample, cfg.out)
