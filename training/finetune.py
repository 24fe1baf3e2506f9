"""`python -m training finetune`: LoRA, QLoRA or full fine-tuning of a pretrained chat model
with the transformers `Trainer` and PEFT.

Output folder (default `runs/finetune/<name>/`):
  adapter/       PEFT adapter (lora, qlora) naming its base, with the tokenizer, run.json,
                 metrics.jsonl and evals/ (DESIGN §4)
  merged/        a full checkpoint (with --merge, or always for --method full)
  trainer/       the Trainer's checkpoints, for --resume
  metrics.jsonl  one row per logged step (step, epoch, tokens_seen, train_loss, val_loss, lr,
                 tokens_per_second), copied into each servable folder at the end

Design decisions:
- The library does the training: `Trainer` evaluates and saves at each epoch (or every
  --eval-steps), keeps the best checkpoint by validation loss and reloads it at the end,
  stops early after --patience evaluations without improvement, shows progress and
  resumes from its last checkpoint with --resume. Our code is the data (chat_data.py), the
  checks of the arguments, the metrics file and the outputs.
- Every argument is checked before any model loads or any file is written: rank, alpha,
  dropout, epochs, rates, the data, and the target modules (against the base's own Linear
  layers, so a typo lists the names that exist instead of a PEFT traceback).
- CPU-sized defaults (64 training conversations, LoRA on the last 10 of the decoder layers,
  one epoch): with LoRA only near the top, the backward pass stops there, which more than
  halves a step on a 2-core machine; `--lora-layers all` and `--max-train-examples 0`
  (every question) are the GPU settings.
- `qlora` loads the base in 4-bit NF4 through bitsandbytes, which needs CUDA. On a machine
  without it the command refuses and says to use `--method lora` (the same adapter with an
  fp32 base) rather than silently training something else.
- `--merge` reloads the base at full precision and folds the adapter into it, so it works
  the same after qlora (whose base in memory is 4-bit) and gives one self-contained folder.
- The held-out test split (when the data has one) is scored before and after: the
  perplexity of the reference answers (loss on assistant tokens only, token-weighted, the
  same function and the same examples for the base and the fine-tuned model). With PEFT the
  base is the same model with its adapter disabled, so nothing is loaded twice.
- The run registers its models in runs/models.yaml as `base` + `adapter` (and the merged
  checkpoint), so the server can load them without editing the committed registry.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from tqdm import tqdm

from chatforge.journal import git_revision
from training.chat_data import ChatSplits, encode_all, load_chat_data, sample
from training.errors import TrainingError
from training.metrics_log import METRICS_FILE, MetricsLog
from training.model_registry import REPO_ROOT, RUNS_REGISTRY, register, resolve_model
from training.runinfo import hardware

METHODS = ("lora", "qlora", "full")
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class FinetuneConfig:
    base: str = "smollm2-135m-instruct"
    method: Literal["lora", "qlora", "full"] = "lora"
    data: str = str(REPO_ROOT / "runs" / "data" / "pydocs")
    val_data: str | None = None
    out: str | None = None
    name: str | None = None
    epochs: float = 1.0
    max_steps: int = -1
    max_train_examples: int = 64
    max_val_examples: int = 16
    max_test_examples: int = 32
    max_length: int = 256
    batch_size: int = 4
    grad_accum: int = 1
    learning_rate: float | None = None  # 5e-4 for LoRA, 2e-5 for full
    schedule: str = "cosine"
    warmup: float = 0.05
    weight_decay: float = 0.0
    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    lora_layers: int | None = 10  # LoRA on the last N decoder layers only; None: all
    eval_steps: int | None = None
    patience: int = 2
    seed: int = 0
    merge: bool = False
    skip_bad: bool = False
    resume: bool = False
    register: bool = True
    registry: str = str(RUNS_REGISTRY)

    @property
    def lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 2e-5 if self.method == "full" else 5e-4


def check_config(config: FinetuneConfig) -> None:
    """Refuse impossible settings before anything loads or is written."""
    problems = []
    if config.method not in METHODS:
        problems.append(f"--method must be one of {', '.join(METHODS)}")
    if config.method != "full":
        if config.rank < 1:
            problems.append(f"--rank must be at least 1 (got {config.rank})")
        if config.alpha <= 0:
            problems.append(f"--alpha must be positive (got {config.alpha})")
        if not 0 <= config.dropout < 1:
            problems.append(f"--dropout must be in [0, 1) (got {config.dropout})")
        if not config.target_modules:
            problems.append("--target-modules needs at least one module name")
        if config.lora_layers is not None and config.lora_layers < 1:
            problems.append(f"--lora-layers must be at least 1 (got {config.lora_layers})")
    if config.epochs <= 0 and config.max_steps <= 0:
        problems.append("--epochs must be positive (or give --max-steps)")
    if config.lr <= 0:
        problems.append(f"--lr must be positive (got {config.lr})")
    if config.batch_size < 1 or config.grad_accum < 1:
        problems.append("--batch-size and --grad-accum must be at least 1")
    if config.max_length < 16:
        problems.append(f"--max-length must be at least 16 (got {config.max_length})")
    if config.eval_steps is not None and config.eval_steps < 1:
        problems.append("--eval-steps must be at least 1")
    if problems:
        raise TrainingError("; ".join(problems))
    if config.method == "qlora" and not torch.cuda.is_available():
        raise TrainingError(
            "--method qlora loads the base in 4-bit NF4 through bitsandbytes, which needs a "
            "CUDA GPU; none is available here. Use --method lora: the same LoRA adapter, "
            "trained on the base in float32"
        )


def linear_module_names(model: torch.nn.Module) -> set[str]:
    """The leaf names of the model's Linear layers (what LoRA target_modules match)."""
    names = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) or type(module).__name__.startswith("Linear"):
            names.add(name.rsplit(".", 1)[-1])
    return names


def check_target_modules(model: torch.nn.Module, targets: list[str]) -> None:
    if targets == ["all-linear"]:
        return
    available = linear_module_names(model)
    unknown = sorted(set(targets) - available)
    if unknown:
        raise TrainingError(
            f"--target-modules: {', '.join(unknown)} not in the base model; its Linear layers "
            f"are: {', '.join(sorted(available))} (or use all-linear)"
        )


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_base(path: str, method: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        if method == "qlora":
            from transformers import BitsAndBytesConfig

            quantization = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16,
            )
            model = AutoModelForCausalLM.from_pretrained(
                path, quantization_config=quantization, device_map={"": 0}
            )
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise TrainingError(f"cannot load the base model from {path}: {exc}") from None
    if not tokenizer.chat_template:
        raise TrainingError(f"the tokenizer in {path} has no chat template to format chats with")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def wrap_peft(model, config: FinetuneConfig):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if config.method == "qlora":
        model = prepare_model_for_kbit_training(model)
    targets = config.target_modules
    n_layers = model.config.num_hidden_layers
    layers = None
    if config.lora_layers is not None:
        layers = list(range(max(0, n_layers - config.lora_layers), n_layers))
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules="all-linear" if targets == ["all-linear"] else targets,
        layers_to_transform=layers,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


class MetricsCallback:
    """A `TrainerCallback` turning each log event into a metrics.jsonl row (DESIGN §4)."""

    def __init__(self, log: MetricsLog) -> None:
        from transformers import TrainerCallback

        self.log = log
        self._last: tuple[float, int] | None = None
        owner = self

        class _Callback(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                owner.write(state, logs or {})

        self.callback = _Callback()

    def write(self, state, logs: dict) -> None:
        if not {"loss", "eval_loss"} & logs.keys():
            return  # the final summary (train_runtime, ...) is in run.json
        now, tokens = time.monotonic(), int(state.num_input_tokens_seen or 0)
        rate = None
        if "loss" in logs and self._last is not None and now > self._last[0]:
            rate = (tokens - self._last[1]) / (now - self._last[0])
        if "loss" in logs:
            self._last = (now, tokens)
        self.log.write(
            {
                "step": state.global_step,
                "epoch": round(state.epoch or 0.0, 4),
                "tokens_seen": tokens,
                "train_loss": logs.get("loss"),
                "val_loss": logs.get("eval_loss"),
                "lr": logs.get("learning_rate"),
                "tokens_per_second": round(rate, 1) if rate else None,
            }
        )


@torch.no_grad()
def answer_perplexity(model, rows: list[dict], collator, batch_size: int) -> float:
    """exp(mean negative log-likelihood of the labelled (assistant) tokens), token-weighted."""
    was_training = model.training
    model.eval()
    total_nll, total_tokens = 0.0, 0
    device = next(model.parameters()).device
    for start in tqdm(range(0, len(rows), batch_size), desc="answer perplexity", leave=False):
        batch = collator(rows[start : start + batch_size])
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        labels = batch["labels"][:, 1:]
        logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        mask = labels != -100
        picked = logprobs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        total_nll -= picked[mask].sum().item()
        total_tokens += int(mask.sum())
    model.train(was_training)
    return math.exp(total_nll / max(total_tokens, 1))


def _default_name(config: FinetuneConfig) -> str:
    stem = Path(config.base.rstrip("/")).name
    return f"{stem}-docs-{config.method}"


def prepare_data(config: FinetuneConfig, tokenizer) -> tuple[ChatSplits, dict[str, list[dict]]]:
    splits = load_chat_data(config.data, config.val_data, config.seed, config.skip_bad)
    chosen = {
        "train": sample(splits.train, config.max_train_examples, config.seed),
        "val": sample(splits.val, config.max_val_examples, config.seed),
        "test": sample(splits.test, config.max_test_examples, config.seed),
    }
    encoded = {k: encode_all(tokenizer, v, config.max_length) for k, v in chosen.items()}
    if not encoded["train"] or not encoded["val"]:
        raise TrainingError(
            f"no training or validation example keeps an assistant token within "
            f"--max-length {config.max_length}; raise it"
        )
    return splits, encoded


def _training_args(config: FinetuneConfig, out: Path, device: torch.device):
    from transformers import TrainingArguments

    strategy = "steps" if config.eval_steps else "epoch"
    return TrainingArguments(
        output_dir=str(out / "trainer"),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr,
        lr_scheduler_type=config.schedule,
        warmup_steps=config.warmup,
        weight_decay=config.weight_decay,
        eval_strategy=strategy,
        save_strategy=strategy,
        eval_steps=config.eval_steps,
        save_steps=config.eval_steps,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=0.05,
        logging_first_step=True,
        include_num_input_tokens_seen="non_padding",
        report_to="none",
        seed=config.seed,
        use_cpu=device.type == "cpu",
        bf16=config.method == "qlora",
        dataloader_num_workers=0,
    )


def _write_servable(folder: Path, out: Path, run_info: dict) -> None:
    (folder / "run.json").write_text(json.dumps(run_info, indent=2) + "\n")
    metrics = out / METRICS_FILE
    if metrics.is_file():
        shutil.copyfile(metrics, folder / METRICS_FILE)


def merge_adapter(base_path: str, adapter_dir: Path, target: Path) -> None:
    """Fold the adapter into a full-precision copy of its base and save a full checkpoint."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(target)
    AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(target)


@dataclass
class FinetuneResult:
    run_info: dict  # also written to run.json
    model: torch.nn.Module  # the trained model in memory (the best checkpoint)
    tokenizer: object


def check_output(out: Path, resume: bool) -> int | None:
    """The step of the last Trainer checkpoint in `out/trainer` to resume from (None for a
    fresh run); refuses a fresh run into a non-empty folder and a resume without one."""
    checkpoints = sorted(
        int(c.name.removeprefix("checkpoint-"))
        for c in (out / "trainer").glob("checkpoint-*")
        if c.name.removeprefix("checkpoint-").isdigit()
    )
    if resume and not checkpoints:
        raise TrainingError(f"--resume: no Trainer checkpoint in {out / 'trainer'} to resume")
    if out.exists() and any(out.iterdir()) and not resume:
        raise TrainingError(f"{out} is not empty: pass --resume to continue, or another --out")
    return checkpoints[-1] if resume else None


def finetune(config: FinetuneConfig) -> FinetuneResult:
    """Train, save and register."""
    from transformers import DataCollatorForSeq2Seq, EarlyStoppingCallback, Trainer, set_seed

    check_config(config)
    # Seed before the adapter's weights are initialised: the Trainer seeds only later.
    set_seed(config.seed)
    base = resolve_model(config.base)
    name = config.name or _default_name(config)
    out = Path(config.out or REPO_ROOT / "runs" / "finetune" / name).expanduser().resolve()
    resume_step = check_output(out, config.resume)

    started = time.monotonic()
    device = _device()
    model, tokenizer = load_base(base.path, config.method)
    if config.method != "full":
        check_target_modules(model, config.target_modules)
    splits, encoded = prepare_data(config, tokenizer)
    print(
        f"data {splits.source}: {len(encoded['train'])} train / {len(encoded['val'])} val / "
        f"{len(encoded['test'])} test conversations"
        + (f" ({splits.skipped} malformed rows skipped)" if splits.skipped else "")
    )
    if config.method != "full":
        model = wrap_peft(model, config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    print(f"{config.method}: training {trainable:,} of {total:,} parameters on {device}")

    from datasets import Dataset

    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    # The Trainer resumes from its last checkpoint: the log keeps the rows up to its step.
    metrics = MetricsCallback(MetricsLog(out, resume_step))
    trainer = Trainer(
        model=model,
        args=_training_args(config, out, device),
        train_dataset=Dataset.from_list(encoded["train"]),
        eval_dataset=Dataset.from_list(encoded["val"]),
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[EarlyStoppingCallback(config.patience), metrics.callback],
    )
    result = train_resumable(trainer, out, bool(config.resume))
    model = trainer.model
    final = {
        "train_loss": round(result.training_loss, 4),
        "best_val_loss": round(trainer.state.best_metric, 4),
        "steps": trainer.state.global_step,
        "epochs": round(trainer.state.epoch or 0.0, 3),
        "train_seconds": round(result.metrics.get("train_runtime", 0.0), 1),
    }
    if encoded["test"]:
        tuned_ppl = answer_perplexity(model, encoded["test"], collator, config.batch_size)
        if config.method == "full":
            base_model, _ = load_base(base.path, "full")
            base_ppl = answer_perplexity(base_model, encoded["test"], collator, config.batch_size)
            del base_model
        else:
            with model.disable_adapter():
                base_ppl = answer_perplexity(model, encoded["test"], collator, config.batch_size)
        final.update(
            test_answer_perplexity=round(tuned_ppl, 3),
            base_test_answer_perplexity=round(base_ppl, 3),
            test_examples=len(encoded["test"]),
        )

    servable: dict[str, Path] = {}
    if config.method == "full":
        servable["merged"] = out / "merged"
        model.save_pretrained(servable["merged"])
        tokenizer.save_pretrained(servable["merged"])
    else:
        servable["adapter"] = out / "adapter"
        model.save_pretrained(servable["adapter"])
        tokenizer.save_pretrained(servable["adapter"])
        if config.merge:
            servable["merged"] = out / "merged"
            merge_adapter(base.path, servable["adapter"], servable["merged"])

    run_info = {
        "kind": "finetune",
        "command": " ".join(["python", "-m", "training", *sys.argv[1:]]),
        "config": dataclasses.asdict(config),
        "base": dataclasses.asdict(base),
        "data": {"source": splits.source, "available": splits.counts(), "skipped": splits.skipped}
        | {f"used_{k}": len(v) for k, v in encoded.items()},
        "parameters": {"trainable": trainable, "total": total},
        "hardware": hardware(device, world=1),
        "git_revision": git_revision(),
        "duration_seconds": round(time.monotonic() - started, 1),
        "final_metrics": final,
        "outputs": {k: str(v) for k, v in servable.items()},
    }
    for folder in servable.values():
        _write_servable(folder, out, run_info)
    (out / "run.json").write_text(json.dumps(run_info, indent=2) + "\n")

    if config.register:
        registry = Path(config.registry)
        base_ref = base.registry_name or base.path
        if "adapter" in servable:
            register(name, {"base": base_ref, "adapter": str(servable["adapter"])}, registry)
        if "merged" in servable:
            merged_name = name if config.method == "full" else f"{name}-merged"
            register(merged_name, {"checkpoint": str(servable["merged"])}, registry)
        print(f"registered in {registry}")
    return FinetuneResult(run_info, model, tokenizer)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = FinetuneConfig()
    a = parser.add_argument
    a("--base", default=d.base, help="registry name, checkpoint folder or hub id")
    a("--method", choices=METHODS, default=d.method)
    a("--data", default=d.data, help="corpus folder (docs-QA), JSONL of messages, or hf:NAME")
    a("--val-data", help="JSONL of messages for validation (default: 10%% of --data)")
    a("--skip-bad", action="store_true", help="skip malformed rows (counted) instead of failing")
    a("--out", help="output folder (default runs/finetune/NAME)")
    a("--name", help="model name to register (default <base>-docs-<method>)")
    a("--epochs", type=float, default=d.epochs)
    a("--max-steps", type=int, default=d.max_steps, help="stop after this many steps")
    a("--max-train-examples", type=int, default=d.max_train_examples, help="0: all")
    a("--max-val-examples", type=int, default=d.max_val_examples, help="0: all")
    a("--max-test-examples", type=int, default=d.max_test_examples, help="0: all")
    a("--max-length", type=int, default=d.max_length, help="tokens per conversation")
    a("--batch-size", type=int, default=d.batch_size)
    a("--grad-accum", type=int, default=d.grad_accum)
    a("--lr", type=float, dest="learning_rate", help="default 5e-4 (LoRA) or 2e-5 (full)")
    a("--schedule", default=d.schedule, help="cosine, linear, constant, ...")
    a("--warmup", type=float, default=d.warmup, help="warm-up steps, or a fraction < 1")
    a("--weight-decay", type=float, default=d.weight_decay)
    a("--rank", type=int, default=d.rank, help="LoRA rank r")
    a("--alpha", type=float, default=d.alpha, help="LoRA alpha")
    a("--dropout", type=float, default=d.dropout, help="LoRA dropout")
    a("--target-modules", default=",".join(d.target_modules), help="comma list or all-linear")
    a(
        "--lora-layers",
        type=lambda v: None if v == "all" else int(v),
        default=d.lora_layers,
        help="LoRA on the last N decoder layers only (backward stops there: faster on a CPU); "
        "'all' for every layer",
    )
    a("--eval-steps", type=int, help="evaluate and save every N steps (default: each epoch)")
    a("--patience", type=int, default=d.patience, help="early stopping, in evaluations")
    a("--seed", type=int, default=d.seed)
    a("--merge", action="store_true", help="also write merged/, a full checkpoint")
    a("--resume", action="store_true", help="continue from the last Trainer checkpoint")
    a("--no-register", dest="register", action="store_false", help="do not touch runs/models.yaml")
    a("--registry", default=d.registry, help="the run registry file to add the models to")


def run(args: argparse.Namespace) -> None:
    from chatforge.journal import append_entry

    fields = {f.name for f in dataclasses.fields(FinetuneConfig)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    values["target_modules"] = [t.strip() for t in args.target_modules.split(",") if t.strip()]
    config = FinetuneConfig(**values)
    info = finetune(config).run_info
    numbers = info["final_metrics"]
    print(json.dumps(numbers, indent=2))
    append_entry(
        "training",
        f"finetune {config.method} of {config.base}",
        numbers,
        artifacts=list(info["outputs"].values()),
    )


def train_resumable(trainer, out: Path, resume: bool):
    """`trainer.train()`, continuing from the checkpoints in `out/trainer` when `resume`;
    an interrupted run says how to continue it."""
    try:
        return trainer.train(resume_from_checkpoint=resume)
    except KeyboardInterrupt:
        print(
            f"interrupted: checkpoints so far are in {out / 'trainer'}; continue with the "
            "same command and --resume",
            file=sys.stderr,
        )
        raise
