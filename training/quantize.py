"""`python -m training quantize`: quantized variants of a checkpoint, measured side by side
with the unquantized model, so their costs and losses are numbers rather than guesses.

For each variant (`none` first): size on disk and in memory, decode tokens/s, perplexity
(bits per byte) on the held-out corpus split, the docs-QA score, and how far its answers
drift from the unquantized model's. The table goes to the model's `evals/quantization.json`
and `.md`, and to `daily-log/`.

Design decisions:
- The variants are the registry's `quantization:` values, loaded the way the server loads
  them (the eval framework's checkpoint target goes through the backend's loader), so the
  table describes exactly what `models.yaml` serves. Perplexity and docs-QA are the eval
  suites themselves (`evals.runner.run_suite`): the same scorer as every other number.
- Quality loss must be visible, not averaged away: next to the docs-QA F1 (which compares
  with a reference the model rarely matches anyway) the table gives `agreement`, the token
  F1 between each variant's answers and the unquantized model's answers to the same
  questions, and `repeats`, the share of repeated word 3-grams in its answers (garbled
  decoding loops). A variant is flagged `DEGRADED` when agreement falls below 0.5, the
  docs-QA F1 drops by more than a quarter, or bits per byte rise by more than 5%.
- Speed is measured with every variant loaded at once and the rounds alternating between
  them (median of several greedy decodes of one prompt), so a noisy shared machine slows
  them alike instead of favouring whichever ran in a quiet moment.
- Size on disk is the state dict as `torch.save` writes it (the one format every variant,
  including torch's packed dynamic-int8 weights, can be written in); size in memory sums
  the bytes of the tensors the model holds, looking inside quantized tensor subclasses.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from training.errors import TrainingError
from training.model_registry import REPO_ROOT, resolve_model

CPU_VARIANTS = ("int8", "int8-dynamic")
CUDA_VARIANTS = ("int8", "bnb-int8", "nf4")
ALL_VARIANTS = ("none", "int8", "int8-dynamic", "bnb-int8", "nf4")
SPEED_PROMPT = [
    {"role": "user", "content": "Explain what a Python list comprehension is, with an example."}
]
AGREEMENT_FLOOR = 0.5
F1_DROP = 0.25
BPB_RISE = 0.05


@dataclass
class VariantRow:
    variant: str
    disk_mb: float
    memory_mb: float
    tokens_per_s: float
    bits_per_byte: float
    docs_qa_f1: float
    docs_qa_rouge_l: float
    agreement: float  # token F1 of the answers against the unquantized model's answers
    repeats: float  # share of repeated word 3-grams in the answers
    verdict: str = "ok"


def tensor_bytes(model: torch.nn.Module) -> int:
    """Bytes held by the model's tensors, each storage once, quantized subclasses opened."""
    seen: set[int] = set()

    def size(value) -> int:
        if isinstance(value, tuple | list):
            return sum(size(v) for v in value)
        if not isinstance(value, torch.Tensor):
            return 0
        if hasattr(value, "__tensor_flatten__") and type(value) is not torch.Tensor:
            names, _ = value.__tensor_flatten__()
            return sum(size(getattr(value, n)) for n in names)
        if value.is_quantized:
            value = value.int_repr()  # packed int8 weights of torch's dynamic quantization
        key = value.untyped_storage().data_ptr()
        if key in seen:
            return 0
        seen.add(key)
        return value.untyped_storage().nbytes()

    return sum(size(v) for v in model.state_dict().values())


def disk_bytes(model: torch.nn.Module) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights.pt"
        torch.save(model.state_dict(), path)
        return path.stat().st_size


def repeated_trigrams(texts: list[str]) -> float:
    total = repeated = 0
    for text in texts:
        words = text.split()
        grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
        total += len(grams)
        repeated += len(grams) - len(set(grams))
    return repeated / total if total else 0.0


def decode_speed(targets: dict, rounds: int, max_tokens: int) -> dict[str, float]:
    """Median greedy decode tokens/s per variant, rounds alternating between variants."""
    samples: dict[str, list[float]] = {name: [] for name in targets}
    for target in targets.values():
        target.chat(SPEED_PROMPT, 4)  # warm-up
    for _ in range(rounds):
        for name, target in targets.items():
            start = time.perf_counter()
            done = target.chat(SPEED_PROMPT, max_tokens)
            samples[name].append(done.completion_tokens / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in samples.items()}


def verdict(row: VariantRow, reference: VariantRow) -> str:
    reasons = []
    if row.agreement < AGREEMENT_FLOOR:
        reasons.append(f"answers drift (agreement {row.agreement:.2f})")
    if row.docs_qa_f1 < reference.docs_qa_f1 * (1 - F1_DROP):
        reasons.append(f"docs-QA F1 {row.docs_qa_f1:.3f} vs {reference.docs_qa_f1:.3f}")
    if row.bits_per_byte > reference.bits_per_byte * (1 + BPB_RISE):
        reasons.append(f"bits/byte {row.bits_per_byte:.3f} vs {reference.bits_per_byte:.3f}")
    return "DEGRADED: " + "; ".join(reasons) if reasons else "ok"


def markdown_table(model: str, rows: list[VariantRow], settings: dict) -> str:
    head = (
        "| variant | disk MB | memory MB | decode tok/s | bits/byte | docs-QA F1 | ROUGE-L "
        "| agreement | repeats | verdict |\n|---|---|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r.variant} | {r.disk_mb:.1f} | {r.memory_mb:.1f} | {r.tokens_per_s:.1f} "
        f"| {r.bits_per_byte:.3f} | {r.docs_qa_f1:.3f} | {r.docs_qa_rouge_l:.3f} "
        f"| {r.agreement:.2f} | {r.repeats:.2f} | {r.verdict} |\n"
        for r in rows
    )
    notes = ", ".join(f"{k} {v}" for k, v in settings.items())
    return f"# Quantized variants of {model}\n\n{head}{body}\nSettings: {notes}\n"


def default_variants() -> list[str]:
    return list(CUDA_VARIANTS if torch.cuda.is_available() else CPU_VARIANTS)


def quantize(
    model: str,
    variants: list[str],
    corpus: Path,
    qa_size: int,
    ppl_size: int,
    max_tokens: int,
    speed_rounds: int,
) -> tuple[Path, list[VariantRow]]:
    from evals.runner import run_suite
    from evals.scoring import token_f1
    from evals.suites.base import SuiteConfig
    from evals.targets import CheckpointTarget

    unknown = [v for v in variants if v not in ALL_VARIANTS]
    if unknown:
        raise TrainingError(
            f"--variants: unknown {', '.join(unknown)}; choose from {', '.join(ALL_VARIANTS[1:])}"
        )
    if not (corpus / "questions.jsonl").is_file():
        raise TrainingError(f"--corpus {corpus}: build it first with `python -m training data`")
    resolved = resolve_model(model)
    if not resolved.is_local:
        raise TrainingError(f"{model}: quantize works on a local checkpoint folder")
    folder = Path(resolved.path)
    names = ["none", *[v for v in variants if v != "none"]]
    targets = {}
    for variant in names:
        try:
            targets[variant] = CheckpointTarget(
                folder, model=f"{folder.name}[{variant}]", quantization=variant
            )
        except ValueError as exc:  # e.g. bitsandbytes variants on a machine without CUDA
            raise TrainingError(str(exc)) from None
    print(f"measuring decode speed ({speed_rounds} alternating rounds)")
    speed = decode_speed(targets, speed_rounds, max_tokens)
    rows: list[VariantRow] = []
    reference_answers: list[str] = []
    for variant, target in targets.items():
        ppl = run_suite("perplexity", target, SuiteConfig(size=ppl_size, corpus=corpus))
        qa = run_suite(
            "docs-qa", target, SuiteConfig(size=qa_size, corpus=corpus, max_tokens=max_tokens)
        )
        answers = [row.output for row in qa.result.rows]
        if variant == "none":
            reference_answers = answers
        agreement = statistics.mean(
            token_f1(a, r) for a, r in zip(answers, reference_answers, strict=True)
        )
        headline_ppl, headline_qa = ppl.result.headline(), qa.result.headline()
        rows.append(
            VariantRow(
                variant=variant,
                disk_mb=disk_bytes(target.lm) / 1e6,
                memory_mb=tensor_bytes(target.lm) / 1e6,
                tokens_per_s=speed[variant],
                bits_per_byte=headline_ppl["bits_per_byte"],
                docs_qa_f1=headline_qa["f1"],
                docs_qa_rouge_l=headline_qa["rouge_l"],
                agreement=agreement,
                repeats=repeated_trigrams(answers),
            )
        )
        rows[-1].verdict = verdict(rows[-1], rows[0])
        target.close()
    evals_dir = folder / "evals"
    evals_dir.mkdir(exist_ok=True)
    settings = {
        "docs-qa items": qa_size,
        "perplexity items": ppl_size,
        "max_tokens": max_tokens,
        "speed rounds": speed_rounds,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "corpus": str(corpus),
    }
    table = markdown_table(folder.name, rows, settings)
    (evals_dir / "quantization.md").write_text(table)
    path = evals_dir / "quantization.json"
    data = {"kind": "quantization", "model": str(folder), "settings": settings}
    path.write_text(json.dumps(data | {"variants": [asdict(r) for r in rows]}, indent=2) + "\n")
    return path, rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--model", default="smollm2-135m-instruct", help="registry name or checkpoint folder")
    a(
        "--variants",
        help=f"comma list of {', '.join(ALL_VARIANTS[1:])} "
        f"(default here: {','.join(default_variants())})",
    )
    a("--corpus", type=Path, default=REPO_ROOT / "runs" / "data" / "pydocs")
    a("--qa-size", type=int, default=16, help="docs-QA questions per variant")
    a("--ppl-size", type=int, default=8, help="held-out text chunks for perplexity")
    a("--max-tokens", type=int, default=128, help="answer length for docs-QA and speed")
    a("--speed-rounds", type=int, default=3)


def run(args: argparse.Namespace) -> None:
    from evals.journal import append_entry

    variants = args.variants.split(",") if args.variants else default_variants()
    path, rows = quantize(
        args.model,
        [v.strip() for v in variants if v.strip()],
        args.corpus,
        args.qa_size,
        args.ppl_size,
        args.max_tokens,
        args.speed_rounds,
    )
    print((path.parent / "quantization.md").read_text())
    append_entry(
        "eval",
        f"quantized variants of {args.model}",
        {
            f"{r.variant}": f"{r.disk_mb:.0f} MB, {r.tokens_per_s:.1f} tok/s, "
            f"bpb {r.bits_per_byte:.3f}, F1 {r.docs_qa_f1:.3f}, agree {r.agreement:.2f}, "
            f"{r.verdict}"
            for r in rows
        },
        artifacts=[path, path.with_suffix(".md")],
    )
