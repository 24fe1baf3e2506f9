"""`python -m evals quantize`: quantized variants of a checkpoint, measured side by side
with the unquantized model, so their costs and losses are numbers rather than guesses.

For each variant (`none` first): size on disk and in memory, decode tokens/s, perplexity
as bits per byte on the held-out corpus split, the docs-QA score, and how far its answers
drift from the unquantized model's. Variants this machine cannot run (bitsandbytes without
CUDA, torch's dynamic int8 on a GPU) are rows too, marked skipped with the loader's reason.

Design decisions:
- The variants are the registry's `quantization:` values, loaded the way the server loads
  them (the eval framework's `CheckpointTarget` goes through `backend.model_loader`), so the
  table describes exactly what `models.yaml` serves. Perplexity and docs-QA are the eval
  suites themselves (`evals.runner.run_suite`): the same scorer as every other number.
- Quality loss must be visible, not averaged away. The docs-QA F1 compares with a reference
  the model rarely matches anyway, so the table adds `agreement`, the token F1 between each
  variant's answers and the unquantized model's answers to the same prompts, and `repeats`,
  the share of repeated word 3-grams in its answers (decoding loops). The answers are the
  docs-QA answers plus one long answer (the speed prompt, `--max-tokens` long): a variant
  that keeps short answers but garbles long ones shows it there. A variant is `DEGRADED`
  when agreement falls below 0.5, repeats rise by more than 0.1 over the unquantized
  model's, the docs-QA F1 drops by more than a quarter, or bits per byte rise by over 5%.
- The table is an evals results file (suite `quantization`, one row per variant with its
  numbers as scores, `passed` false when degraded, the long answer as output next to the
  unquantized one as reference), recorded into the model's `evals/` with the same writer
  as every eval: `GetModel` cards carry it, and the UI's Evals tab lists it, shows the rows
  and filters the degraded ones as failures. Its one aggregate is the share of degraded
  variants. A Markdown copy sits beside it for people reading the folder.
- Speed is measured with every variant loaded at once, in short rounds (`--speed-tokens`
  greedy tokens of one prompt) that alternate between the variants, the order rotating
  each round, and each variant's rate is its fastest round (timeit's rule: noise only ever
  slows a run down). On a busy shared 2-core machine one decode's rate swings several
  fold within a minute; a median of a few rounds still lands on whichever variant was
  unlucky, the best of many short interleaved rounds does not. Every round's rate is kept
  in the run folder's speed.json and the row's `speed_samples`.
- Size on disk is the state dict as `torch.save` writes it (the one format every variant,
  including torch's packed dynamic-int8 weights, can be written in); size in memory sums
  the bytes of the tensors the model holds, each storage once (tied embeddings), looking
  inside quantized tensor subclasses.
- Resumable: the run folder keeps the speed measurements and each variant's suite runs
  (the runner's own resumable folders); `--resume RUN_DIR` measures only what is missing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from chatforge.paths import REPO_ROOT
from evals.errors import EvalError
from evals.targets import CheckpointTarget, checkpoint_folder

VARIANTS = ("int8", "int8-dynamic", "bnb-int8", "nf4")
SPEED_PROMPT = [
    {"role": "user", "content": "Explain what a Python list comprehension is, with an example."}
]
AGREEMENT_FLOOR = 0.5
REPEATS_RISE = 0.1
F1_DROP = 0.25
BPB_RISE = 0.05
SUITE_VERSION = "1"
RUN_FILE = "quantize.json"
SPEED_FILE = "speed.json"
TABLE_NAME = "quantization"


@dataclass(frozen=True)
class QuantizeConfig:
    model: str
    variants: tuple[str, ...] = VARIANTS
    corpus: Path = REPO_ROOT / "runs" / "data" / "pydocs"
    qa_size: int = 16
    ppl_size: int = 8
    max_tokens: int = 128
    speed_rounds: int = 8
    speed_tokens: int = 32

    def check(self) -> None:
        unknown = [v for v in self.variants if v not in ("none", *VARIANTS)]
        if unknown:
            raise EvalError(
                f"--variants: unknown {', '.join(unknown)}; choose from {', '.join(VARIANTS)}"
            )
        for flag, value in (
            ("--qa-size", self.qa_size),
            ("--ppl-size", self.ppl_size),
            ("--max-tokens", self.max_tokens),
            ("--speed-rounds", self.speed_rounds),
            ("--speed-tokens", self.speed_tokens),
        ):
            if value < 1:
                raise EvalError(f"{flag} must be at least 1, not {value}")
        if not (self.corpus / "questions.jsonl").is_file():
            raise EvalError(
                f"--corpus {self.corpus}: no corpus there; build it first with "
                "`python -m training data --source pydocs` or pass --corpus DIR"
            )

    def settings(self) -> dict:
        """What a resumed run must share with the run it continues."""
        return {
            "variants": ["none", *[v for v in self.variants if v != "none"]],
            "corpus": str(self.corpus.resolve()),
            "qa_size": self.qa_size,
            "ppl_size": self.ppl_size,
            "max_tokens": self.max_tokens,
            "speed_rounds": self.speed_rounds,
            "speed_tokens": self.speed_tokens,
            "device": "cuda" if torch.cuda.is_available() else "cpu",
        }


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
    long_answer: str = ""
    runs: dict[str, str] = field(default_factory=dict)  # suite -> its run folder
    speed_samples: list[float] = field(default_factory=list)  # tokens/s of each round

    @property
    def degraded(self) -> bool:
        return self.verdict != "ok"


@dataclass(frozen=True)
class Skipped:
    variant: str
    reason: str


def tensor_bytes(model: torch.nn.Module) -> int:
    """Bytes held by the model's tensors, each storage once, quantized subclasses opened."""
    seen: set[int] = set()

    def size(value) -> int:
        if isinstance(value, tuple | list):  # torch's packed dynamic-int8 (weight, bias)
            return sum(size(v) for v in value)
        if not isinstance(value, torch.Tensor):
            return 0
        if hasattr(value, "__tensor_flatten__") and type(value) is not torch.Tensor:
            names, _ = value.__tensor_flatten__()
            return sum(size(getattr(value, n)) for n in names)
        storage = value.untyped_storage()
        if storage.data_ptr() in seen:
            return 0
        seen.add(storage.data_ptr())
        return storage.nbytes()

    state = model.state_dict()  # alive until summed: no freed storage's address is reused
    return sum(size(v) for v in state.values())


def disk_bytes(model: torch.nn.Module) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights.pt"
        torch.save(model.state_dict(), path)
        return path.stat().st_size


def decode_speed(targets: dict, config: QuantizeConfig) -> dict[str, dict]:
    """Per variant: decode tokens/s of its fastest round (rounds alternate between the
    variants in a rotating order), every round's rate, and its long answer (one greedy
    decode of `max_tokens`)."""
    names = list(targets)
    samples: dict[str, list[float]] = {name: [] for name in names}
    answers: dict[str, str] = {}
    for name in names:
        print(f"  long answer: {name}", flush=True)
        answers[name] = targets[name].chat(SPEED_PROMPT, config.max_tokens).text  # + warm-up
    for n in tqdm(range(config.speed_rounds), desc="speed rounds", unit="round"):
        for name in names[n % len(names) :] + names[: n % len(names)]:
            start = time.perf_counter()
            done = targets[name].chat(SPEED_PROMPT, config.speed_tokens)
            samples[name].append(done.completion_tokens / (time.perf_counter() - start))
    return {
        name: {
            "tokens_per_s": max(samples[name]),
            "samples": [round(v, 2) for v in samples[name]],
            "long_answer": answers[name],
        }
        for name in names
    }


def verdict(row: VariantRow, reference: VariantRow) -> str:
    reasons = []
    if row.agreement < AGREEMENT_FLOOR:
        reasons.append(f"answers drift (agreement {row.agreement:.2f})")
    if row.repeats > reference.repeats + REPEATS_RISE:
        reasons.append(f"answers loop (repeats {row.repeats:.2f} vs {reference.repeats:.2f})")
    if row.docs_qa_f1 < reference.docs_qa_f1 * (1 - F1_DROP):
        reasons.append(f"docs-QA F1 {row.docs_qa_f1:.3f} vs {reference.docs_qa_f1:.3f}")
    if row.bits_per_byte > reference.bits_per_byte * (1 + BPB_RISE):
        reasons.append(f"bits/byte {row.bits_per_byte:.3f} vs {reference.bits_per_byte:.3f}")
    return "DEGRADED: " + "; ".join(reasons) if reasons else "ok"


def markdown_table(model: str, rows: list[VariantRow], skipped: list[Skipped], settings) -> str:
    head = (
        "| variant | disk MB | memory MB | decode tok/s | bits/byte | docs-QA F1 | ROUGE-L "
        "| agreement | repeats | verdict |\n|---|---|---|---|---|---|---|---|---|---|\n"
    )
    body = ""
    for r in rows:
        shown = f"**{r.verdict}**" if r.degraded else "ok"
        body += (
            f"| {r.variant} | {r.disk_mb:.1f} | {r.memory_mb:.1f} | {r.tokens_per_s:.1f} "
            f"| {r.bits_per_byte:.3f} | {r.docs_qa_f1:.3f} | {r.docs_qa_rouge_l:.3f} "
            f"| {r.agreement:.2f} | {r.repeats:.2f} | {shown} |\n"
        )
    body += "".join(
        f"| {s.variant} | – | – | – | – | – | – | – | – | skipped: {s.reason} |\n" for s in skipped
    )
    notes = ", ".join(f"{k} {v}" for k, v in settings.items())
    rounds = "; ".join(f"{r.variant} {', '.join(map(str, r.speed_samples))}" for r in rows)
    answers = "".join(
        f"\n**{r.variant}**:\n\n> " + " ".join(r.long_answer.split())[:600] + "\n" for r in rows
    )
    return (
        f"# Quantized variants of {model}\n\n{head}{body}\ndecode tok/s: the fastest of "
        "the alternating decode rounds; bits/byte: the perplexity suite on the held-out "
        "split (lower is better); agreement: token F1 of the answers against the unquantized "
        "model's; repeats: share of repeated word 3-grams.\n\n"
        f"Settings: {notes}\n\nDecode rounds (tok/s): {rounds}\n\n"
        "## The long answer of each variant\n\n"
        f"Prompt: {SPEED_PROMPT[0]['content']}\n{answers}"
    )


def table_result(target_info: dict, rows: list[VariantRow], skipped: list[Skipped], meta: dict):
    """The table as an evals results file (see the module docstring)."""
    from evals.results import MetricSpec, Row, RunResult

    def scores(r: VariantRow) -> dict[str, float]:
        numbers = {k: v for k, v in asdict(r).items() if isinstance(v, float)}
        return numbers if r.variant == "none" else {**numbers, "degraded": float(r.degraded)}

    prompt, reference = SPEED_PROMPT[0]["content"], rows[0].long_answer
    result = RunResult(
        suite=TABLE_NAME,
        suite_version=SUITE_VERSION,
        model=meta["model_name"],
        target=target_info,
        settings=meta["settings"],
        metrics=[
            MetricSpec(
                "degraded",
                "mean",
                "degraded",
                "share of the quantized variants flagged DEGRADED",
                higher_is_better=False,
            )
        ],
        rows=[
            Row(
                id=r.variant,
                input=prompt,
                reference=reference,
                output=r.long_answer,
                scores=scores(r),
                passed=not r.degraded,
                extra={"verdict": r.verdict, "runs": r.runs, "speed_samples": r.speed_samples},
            )
            for r in rows
        ]
        + [
            Row(id=s.variant, output=f"skipped: {s.reason}", extra={"skipped": s.reason})
            for s in skipped
        ],
        git_revision=meta["git_revision"],
        started_at=meta["started_at"],
        finished_at=meta["finished_at"],
        duration_s=meta["duration_s"],
    )
    result.compute_aggregates()
    return result


def _load_targets(folder: Path, variants: list[str]) -> tuple[dict, list[Skipped]]:
    targets, skipped = {}, []
    for variant in variants:
        print(f"loading {folder.name} with quantization {variant}", flush=True)
        try:
            targets[variant] = CheckpointTarget(
                folder, model=f"{folder.name}[{variant}]", quantization=variant
            )
        except ValueError as exc:  # the loader's word on what this machine cannot run
            if variant == "none":
                raise EvalError(f"{folder}: {exc}") from None
            skipped.append(Skipped(variant, str(exc)))
    return targets, skipped


def _suite_run(name: str, target, config, out_root: Path):
    """A suite's results in `out_root`: read back when finished, resumed when cut short."""
    from evals.results import RESULTS_FILE, load_results
    from evals.runner import run_suite

    found = sorted(out_root.glob(f"*-{name}-*")) if out_root.is_dir() else []
    if found and (found[-1] / RESULTS_FILE).is_file():
        return load_results(found[-1]), found[-1]
    outcome = run_suite(
        name, target, config, out_root=out_root, resume=found[-1] if found else None,
        record=False,
    )  # fmt: skip
    return outcome.result, outcome.run_dir


def _measure(targets: dict, speed: dict, config: QuantizeConfig, run_dir: Path):
    from evals.scoring import repeated_trigrams, token_f1
    from evals.suites import SuiteConfig

    rows: list[VariantRow] = []
    reference: dict[str, str] = {}  # the unquantized model's answers (it is measured first)
    for variant, target in targets.items():
        ppl, ppl_dir = _suite_run(
            "perplexity", target, SuiteConfig(size=config.ppl_size, corpus=config.corpus),
            run_dir / variant,
        )  # fmt: skip
        qa_config = SuiteConfig(size=config.qa_size, corpus=config.corpus,
                                max_tokens=config.max_tokens)  # fmt: skip
        qa, qa_dir = _suite_run("docs-qa", target, qa_config, run_dir / variant)
        answers = {row.id: row.output for row in qa.rows if not row.error}
        answers["long answer"] = speed[variant]["long_answer"]
        reference = reference or answers
        shared = [key for key in answers if key in reference]
        headline_ppl, headline_qa = ppl.headline(), qa.headline()
        row = VariantRow(
            variant=variant,
            disk_mb=disk_bytes(target.lm) / 1e6,
            memory_mb=tensor_bytes(target.lm) / 1e6,
            tokens_per_s=speed[variant]["tokens_per_s"],
            bits_per_byte=headline_ppl["bits_per_byte"],
            docs_qa_f1=headline_qa["f1"],
            docs_qa_rouge_l=headline_qa["rouge_l"],
            agreement=statistics.mean(token_f1(answers[k], reference[k]) for k in shared),
            repeats=repeated_trigrams(list(answers.values())),
            long_answer=speed[variant]["long_answer"],
            runs={"perplexity": str(ppl_dir), "docs-qa": str(qa_dir)},
            speed_samples=speed[variant]["samples"],
        )
        row.verdict = verdict(row, rows[0] if rows else row)
        rows.append(row)
    return rows


def quantize(config: QuantizeConfig, resume: Path | None = None):
    """Measure the variants; returns (results file in the model's evals/, rows, skipped)."""
    from evals.results import dumps, save_results
    from evals.runner import git_revision, open_run_folder, runs_dir

    config.check()
    folder = checkpoint_folder(config.model).resolve()
    if (folder / "adapter_config.json").is_file():
        raise EvalError(
            f"{folder} is a LoRA adapter: quantize a full checkpoint (the base, or the "
            "adapter merged into it with `python -m training finetune --merge`)"
        )
    if not (folder / "config.json").is_file():
        raise EvalError(f"{folder} is not a checkpoint folder (no config.json)")
    identity = {"model": str(folder), "settings": config.settings()}
    label = f"{TABLE_NAME}-{folder.name}"
    run_dir, meta = open_run_folder(runs_dir(), label, identity, resume, RUN_FILE)
    targets, skipped = _load_targets(folder, identity["settings"]["variants"])
    try:
        speed_file = run_dir / SPEED_FILE
        if speed_file.is_file():
            speed = json.loads(speed_file.read_text())
        else:
            print("decoding the long answers, then measuring decode speed")
            speed = decode_speed(targets, config)
            speed_file.write_text(json.dumps(speed, indent=1))
        rows = _measure(targets, speed, config, run_dir)
    except EvalError as exc:
        raise EvalError(f"{exc}\n(this run's folder: {run_dir}; --resume {run_dir})") from None
    except KeyboardInterrupt:
        print(f"what finished is kept: continue with --resume {run_dir}", file=sys.stderr)
        raise
    finished = dt.datetime.now(dt.UTC)
    started = dt.datetime.fromisoformat(meta["started_at"])
    none = targets["none"]
    result = table_result(
        {**none.describe(), "variants": meta["settings"]["variants"]},
        rows,
        skipped,
        {
            "model_name": folder.name,
            "settings": meta["settings"],
            "git_revision": git_revision(),
            "started_at": meta["started_at"],
            "finished_at": finished.isoformat(timespec="seconds"),
            "duration_s": round((finished - started).total_seconds(), 3),
        },
    )
    table = markdown_table(folder.name, rows, skipped, meta["settings"])
    save_results(result, run_dir)
    (run_dir / f"{TABLE_NAME}.md").write_text(table)
    path = Path(none.record(f"{TABLE_NAME}.json", dumps(result)))
    none.record(f"{TABLE_NAME}.md", table)
    return path, rows, skipped, run_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--model", default="smollm2-135m-instruct", help="registry name or checkpoint folder")
    a(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma list of {', '.join(VARIANTS)} (default: all; those this machine cannot "
        "run are listed as skipped with the reason)",
    )
    a("--corpus", type=Path, default=REPO_ROOT / "runs" / "data" / "pydocs")
    a("--qa-size", type=int, default=16, help="docs-QA questions per variant")
    a("--ppl-size", type=int, default=8, help="held-out text chunks for perplexity")
    a("--max-tokens", type=int, default=128, help="answer length (docs-QA, the long answer)")
    a("--speed-rounds", type=int, default=8, help="alternating decode rounds per variant")
    a("--speed-tokens", type=int, default=32, help="tokens decoded in each speed round")
    a("--resume", type=Path, help="a quantize run folder (runs/evals/...-quantization-...)")


def run(args: argparse.Namespace) -> None:
    from chatforge.journal import append_entry

    variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    config = QuantizeConfig(
        model=args.model,
        variants=variants,
        corpus=args.corpus,
        qa_size=args.qa_size,
        ppl_size=args.ppl_size,
        max_tokens=args.max_tokens,
        speed_rounds=args.speed_rounds,
        speed_tokens=args.speed_tokens,
    )
    path, rows, skipped, run_dir = quantize(config, args.resume)
    print((path.parent / f"{TABLE_NAME}.md").read_text())
    numbers: dict[str, object] = {
        r.variant: f"{r.disk_mb:.0f} MB, {r.tokens_per_s:.1f} tok/s, bpb {r.bits_per_byte:.3f}, "
        f"F1 {r.docs_qa_f1:.3f}, agree {r.agreement:.2f}, repeats {r.repeats:.2f}, {r.verdict}"
        for r in rows
    }
    numbers |= {s.variant: f"skipped: {s.reason}" for s in skipped}
    append_entry(
        "eval",
        f"quantized variants of {args.model}",
        numbers,
        artifacts=[path, path.with_suffix(".md"), run_dir / "results.json"],
    )
