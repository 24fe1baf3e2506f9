"""`python -m training tokenizer`: a byte-level BPE tokenizer with chat special tokens.

Design decisions:
- Trained with the `tokenizers` library (Rust, seconds on a few MB) and saved through
  `PreTrainedTokenizerFast`, so the folder is a standard transformers tokenizer the
  server, the exporter and any Hugging Face tool load as they are.
- Byte-level: every string round-trips, nothing is ever unknown. Text is first split by
  the GPT-4 pre-tokenisation pattern (letters, 1-3 digit runs, punctuation, whitespace),
  so merges never glue words to punctuation and numbers stay short.
- Special tokens and the template are ChatML (`<|im_start|>role\\n...<|im_end|>`), the
  format of the default model, so a from-scratch model and SmolLM2 are prompted the same
  way. `<|endoftext|>` separates documents in pretraining and pads; `<|im_end|>` is the
  end-of-turn (eos) token the server stops on.
- Only the train split is used for training; bytes per token are measured on the val split
  so the number says how well the tokenizer generalises, and the default model's tokenizer
  is measured on the same text for scale.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from chatforge.corpus_files import load_documents
from training.corpus import REPO_ROOT
from training.errors import TrainingError

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"""
    r"""|\s*[\r\n]|\s+(?!\S)|\s+"""
)
DEFAULT_MODEL_DIR = Path("~/.cache/chatforge/models/smollm2-135m-instruct")


def train_tokenizer(texts, vocab_size: int):
    """Train a byte-level BPE on an iterable of strings; return a PreTrainedTokenizerFast."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise TrainingError(f"--vocab-size must be at least {256 + len(SPECIAL_TOKENS)}")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=True,
    )
    tokenizer.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=IM_START,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        model_max_length=1_000_000,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def bytes_per_token(tokenizer, texts: list[str]) -> float:
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    n_tokens = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
    return n_bytes / max(n_tokens, 1)


def compare_tokenizers(ours, texts: list[str], reference_dir: Path) -> dict:
    """Bytes per token of ours and of the tokenizer in `reference_dir` on `texts`."""
    from transformers import AutoTokenizer

    report: dict = {"ours": round(bytes_per_token(ours, texts), 4), "ours_vocab": len(ours)}
    reference_dir = reference_dir.expanduser()
    if (reference_dir / "tokenizer.json").is_file() or (
        reference_dir / "tokenizer_config.json"
    ).is_file():
        reference = AutoTokenizer.from_pretrained(reference_dir)
        report["reference"] = round(bytes_per_token(reference, texts), 4)
        report["reference_vocab"] = len(reference)
        report["reference_path"] = str(reference_dir)
    else:
        report["reference_missing"] = (
            f"no tokenizer at {reference_dir}: run `python -m backend prepare-default` "
            "(or pass --compare PATH) to compare with the default model"
        )
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--corpus", type=Path, default=REPO_ROOT / "runs/data/pydocs", help="corpus folder"
    )
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs/scratch/tokenizer")
    parser.add_argument(
        "--compare",
        type=Path,
        default=DEFAULT_MODEL_DIR,
        help="a tokenizer folder to compare bytes/token with (default: the default model's)",
    )


def run(args: argparse.Namespace) -> None:
    from chatforge.journal import append_entry

    train = [d.text for d in load_documents(args.corpus, "train")]
    val = [d.text for d in load_documents(args.corpus, "val")]
    if not train:
        raise TrainingError(f"{args.corpus} has no train documents")
    tokenizer = train_tokenizer(train, args.vocab_size)
    args.out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(args.out)
    report = compare_tokenizers(tokenizer, val or train, args.compare)
    report.update(corpus=str(args.corpus), measured_on="val" if val else "train")
    (args.out / "tokenizer_report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out} (vocab {len(tokenizer)})")
    print(f"bytes per token on the {report['measured_on']} split:")
    print(f"  {f'ours ({len(tokenizer)} tokens)':32s} {report['ours']:.3f}")
    if "reference" in report:
        label = f"default model ({report['reference_vocab']} tokens)"
        print(f"  {label:32s} {report['reference']:.3f}")
    else:
        print(f"  {report['reference_missing']}")
    numbers = {"vocab": len(tokenizer), "bytes/token (ours)": report["ours"]}
    if "reference" in report:
        numbers["bytes/token (default model)"] = report["reference"]
    append_entry("tokenizer", f"byte-level BPE {len(tokenizer)}", numbers, [args.out])
