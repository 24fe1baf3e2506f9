"""`python -m training sft`: supervised fine-tuning of a pretrained GPT into a chat model.

The default conversations are the project's own, built reproducibly:
- questions about the corpus's train pages from `training.questions` (the one generator:
  "What does json.dumps() do?" answered with the page's own sentences), a seeded sample;
- a small hand-written set in `training/data/sft_handwritten.jsonl` (identity, greetings,
  thanks, refusals of out-of-scope or harmful asks, a few basic Python answers), repeated
  so that a few dozen lines are not drowned by thousands of generated pairs.
Validation uses questions of the val pages only, so it measures answers about unseen pages.
Extra conversations can be added with `--conversations FILE.jsonl` (`{"messages": [...]}`).

Design decisions:
- The loss counts assistant tokens only (the answer and its `<|im_end|>`, so the model
  learns to stop); system and user turns are context. Conversations are read, validated
  and encoded by `training.chat_data` (shared with LoRA fine-tuning): the tokens are the
  chat template's own rendering, so training sees exactly what the server will feed.
- Whole conversations are packed into rows of `seq_len + 1` tokens (padding the rest, which
  counts nowhere), and the loop is the pretraining loop: the same flags, checkpoints and
  resume; only the rows and their mask differ.
- The run folder records the conversations it trained on (`conversations.jsonl`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
from pathlib import Path

import numpy as np

from chatforge.journal import current_command
from training import distributed
from training.batches import TokenRows
from training.bpe import ENDOFTEXT, IM_END
from training.chat_data import IGNORE_INDEX, encode_all, load_docs_qa, load_jsonl, sample
from training.corpus import REPO_ROOT, read_manifest
from training.distributed import is_main_process
from training.errors import TrainingError
from training.loop import (
    add_training_arguments,
    config_from_args,
    evaluate,
    train,
    write_run_json,
)
from training.pretrain import TOKENIZER_DIR, load_tokenizer, load_trained, report

HANDWRITTEN = Path(__file__).resolve().parent / "data" / "sft_handwritten.jsonl"


def pack(encoded: list[dict], seq_len: int, pad_id: int) -> TokenRows:
    """Greedy packing of whole encoded conversations (`chat_data.encode_all` rows, already
    cut to seq_len + 1 tokens) into rows; padding never counts in the loss."""
    width = seq_len + 1
    rows: list[list[int]] = []
    masks: list[list[bool]] = []
    row_ids: list[int] = []
    row_mask: list[bool] = []
    for item in encoded:
        ids = item["input_ids"]
        mask = [label != IGNORE_INDEX for label in item["labels"]]
        if len(row_ids) + len(ids) > width:
            rows.append(row_ids + [pad_id] * (width - len(row_ids)))
            masks.append(row_mask + [False] * (width - len(row_mask)))
            row_ids, row_mask = [], []
        row_ids += ids
        row_mask += mask
    if row_ids:
        rows.append(row_ids + [pad_id] * (width - len(row_ids)))
        masks.append(row_mask + [False] * (width - len(row_mask)))
    tokens = np.asarray(rows, dtype=np.int64).reshape(-1, width)
    return TokenRows(tokens, np.asarray(masks, dtype=bool).reshape(-1, width))


def encode_and_pack(tokenizer, conversations: list, seq_len: int) -> tuple[TokenRows, int]:
    """Rows for `conversations`, and how many were dropped (no answer within seq_len)."""
    encoded = encode_all(tokenizer, conversations, seq_len + 1)
    pad_id = tokenizer.convert_tokens_to_ids(ENDOFTEXT)
    return pack(encoded, seq_len, pad_id), len(conversations) - len(encoded)


def chat_sample(model, tokenizer, question: str, max_tokens: int = 60) -> str:
    import torch

    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )
    ids = torch.tensor([tokenizer.encode(prompt, add_special_tokens=False)])
    end = tokenizer.convert_tokens_to_ids(IM_END)
    torch.manual_seed(0)
    model.eval()
    out = model.generate(ids, max_tokens, temperature=0.0)[0, ids.shape[1] :].tolist()
    return tokenizer.decode(out[: out.index(end)] if end in out else out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", type=Path, default=REPO_ROOT / "runs/scratch/base")
    parser.add_argument("--corpus", type=Path, default=REPO_ROOT / "runs/data/pydocs")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs/scratch/chat")
    parser.add_argument("--max-qa", type=int, default=3000, help="corpus questions to train on")
    parser.add_argument(
        "--handwritten", type=Path, default=HANDWRITTEN, help="hand-written conversations"
    )
    parser.add_argument("--handwritten-repeat", type=int, default=8)
    parser.add_argument(
        "--conversations", type=Path, action="append", default=[], help="extra JSONL files"
    )
    add_training_arguments(
        parser, lr=1e-3, muon_lr=0.005, warmup_steps=10, eval_every=50, min_lr_ratio=0.0
    )


def run(args: argparse.Namespace) -> None:
    base = load_trained(args.base)
    tokenizer = load_tokenizer(args.base / TOKENIZER_DIR)
    if args.seq_len > base.config.max_seq_len:
        raise TrainingError(
            f"--seq-len {args.seq_len} exceeds the base model's context {base.config.max_seq_len}"
        )
    handwritten = load_jsonl(args.handwritten)[0] if args.handwritten else []
    docs_qa = load_docs_qa(args.corpus)
    train_convs = sample(docs_qa.train, args.max_qa, args.seed)
    train_convs += handwritten * args.handwritten_repeat
    for extra in args.conversations:
        train_convs += load_jsonl(extra)[0]
    random.Random(args.seed).shuffle(train_convs)
    val_convs = docs_qa.val
    if args.epochs is None and args.max_steps is None:
        args.epochs = 1.0
    cfg = config_from_args(args, args.out)
    train_rows, dropped = encode_and_pack(tokenizer, train_convs, cfg.seq_len)
    val_rows, _ = encode_and_pack(tokenizer, val_convs, cfg.seq_len)
    cfg.out.mkdir(parents=True, exist_ok=True)
    with (cfg.out / "conversations.jsonl").open("w") as f:
        for split, convs in (("train", train_convs), ("val", val_convs)):
            for messages in convs:
                f.write(json.dumps({"split": split, "messages": messages}) + "\n")
    if not (cfg.out / TOKENIZER_DIR / "tokenizer.json").is_file():
        tokenizer.save_pretrained(cfg.out / TOKENIZER_DIR)
    meta = {
        "kind": "sft",
        "command": current_command(),
        "base": str(args.base),
        "data": {
            "corpus": str(args.corpus),
            "content_hash": read_manifest(args.corpus).get("content_hash"),
            "train_conversations": len(train_convs),
            "val_conversations": len(val_convs),
            "handwritten": f"{len(handwritten)} x {args.handwritten_repeat}",
            "train_rows": len(train_rows),
            "dropped_conversations": dropped,
            "target_tokens": int(train_rows.mask[:, 1:].sum()),
        },
    }
    result = train(cfg, base.config, train_rows, val_rows, meta, init_state=base.state_dict())
    if result.status == "interrupted":
        print(f"interrupted at step {result.step}; continue with the same command and --resume")
        raise KeyboardInterrupt
    if not is_main_process():
        return
    model = load_trained(cfg.out)
    questions = ["Who are you?", "What is the weather in Paris today?", val_convs[0][0]["content"]]
    samples = {q: chat_sample(model, tokenizer, q) for q in questions}
    base_val = evaluate(base, val_rows, cfg, distributed.Dist(), contextlib.nullcontext)
    judged = {"val_loss": result.best_val_loss, "base_model_val_loss": base_val}
    run_json = json.loads((cfg.out / "run.json").read_text())
    run_json.update(final=judged, samples=samples)
    write_run_json(cfg.out, run_json)
    text = (
        f"assistant-token val loss {result.best_val_loss:.4f} nats/token "
        f"vs {base_val:.4f} for the base model before SFT"
    )
    samples_text = "\n".join(f"> {q}\n{a}" for q, a in samples.items())
    numbers = {"val loss": result.best_val_loss, "base model val loss": base_val}
    report("sft", result, text, numbers, samples_text, cfg.out)
