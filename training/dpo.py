"""`python -m training dpo`: direct preference optimisation of a chat model with TRL's
`DPOTrainer` and a LoRA adapter, on pairs built from the project's data.

Output folder (default `runs/dpo/<name>/`):
  adapter/       PEFT adapter naming its base, with the tokenizer, run.json, metrics.jsonl
  trainer/       the Trainer's checkpoints, for --resume
  pairs.jsonl    the training pairs (training/preference_pairs.py), to read what it learnt
  metrics.jsonl  one row per logged step: DPO loss, reward margin and accuracy, chosen and
                 rejected log-probabilities, validation loss and margin

Design decisions:
- TRL does the training; the LoRA adapter, the base loading, the output checks, resume,
  metrics rows and registration are fine-tuning's (training/finetune.py), called, not
  copied. With a PEFT model TRL's reference model is the same model with its adapter
  disabled, so nothing is loaded twice and the reference is exactly the parent.
- The parent is any checkpoint the fine-tuning command takes (`--base`): the default
  model, a merged fine-tune, or the from-scratch SFT model exported to a folder.
- CPU-sized defaults (96 pairs, 3 sources of 400 characters each, LoRA on the last 10
  layers, one epoch, beta 0.1): minutes on a 2-core machine; the pair counts and
  `--lora-layers all` are the GPU settings.
- Registered in runs/models.yaml as `base` + `adapter`, so the server serves it beside its
  parent, and run.json names the parent so the Training tab can show the two together.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from chatforge.journal import git_revision
from training.errors import TrainingError
from training.finetune import (
    DEFAULT_TARGETS,
    check_output,
    check_target_modules,
    load_base,
    train_resumable,
    wrap_peft,
)
from training.metrics_log import METRICS_FILE, MetricsLog
from training.model_registry import REPO_ROOT, RUNS_REGISTRY, register, resolve_model
from training.preference_pairs import PairSettings, build_pairs
from training.runinfo import hardware

# TRL's logged names -> the metrics.jsonl fields
LOGGED = {
    "loss": "train_loss",
    "eval_loss": "val_loss",
    "rewards/margins": "reward_margin",
    "rewards/accuracies": "reward_accuracy",
    "logps/chosen": "logp_chosen",
    "logps/rejected": "logp_rejected",
    "eval_rewards/margins": "val_reward_margin",
    "eval_rewards/accuracies": "val_reward_accuracy",
    "learning_rate": "lr",
}


@dataclass
class DPOSettings:
    base: str = "smollm2-135m-instruct"
    data: str = str(REPO_ROOT / "runs" / "data" / "pydocs")
    out: str | None = None
    name: str | None = None
    pairs: PairSettings = field(default_factory=PairSettings)
    epochs: float = 1.0
    max_steps: int = -1
    max_length: int = 512
    batch_size: int = 4
    grad_accum: int = 1
    learning_rate: float = 5e-5
    beta: float = 0.1
    schedule: str = "cosine"
    warmup: float = 0.1
    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    lora_layers: int | None = 10
    method: str = "lora"  # wrap_peft reads it: DPO trains a LoRA adapter
    seed: int = 0
    resume: bool = False
    register: bool = True
    registry: str = str(RUNS_REGISTRY)

    def check(self) -> None:
        problems = []
        if self.beta <= 0:
            problems.append(f"--beta must be positive (got {self.beta})")
        if self.learning_rate <= 0:
            problems.append(f"--lr must be positive (got {self.learning_rate})")
        if self.epochs <= 0 and self.max_steps <= 0:
            problems.append("--epochs must be positive (or give --max-steps)")
        if self.batch_size < 1 or self.grad_accum < 1:
            problems.append("--batch-size and --grad-accum must be at least 1")
        if self.max_length < 32:
            problems.append(f"--max-length must be at least 32 (got {self.max_length})")
        if self.rank < 1 or self.alpha <= 0 or not 0 <= self.dropout < 1:
            problems.append("--rank must be >= 1, --alpha > 0 and --dropout in [0, 1)")
        if problems:
            raise TrainingError("; ".join(problems))
        self.pairs.check()


def metrics_callback(log: MetricsLog):
    """A `TrainerCallback` writing TRL's DPO logs as metrics.jsonl rows."""
    from transformers import TrainerCallback

    class _Callback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if not {"loss", "eval_loss"} & logs.keys():
                return
            row = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4)}
            log.write(row | {ours: logs.get(theirs) for theirs, ours in LOGGED.items()})

    return _Callback()


def _dpo_config(settings: DPOSettings, out: Path):
    from trl import DPOConfig

    return DPOConfig(
        output_dir=str(out / "trainer"),
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.schedule,
        warmup_steps=settings.warmup,
        beta=settings.beta,
        max_length=settings.max_length,
        eval_strategy="epoch",
        save_strategy="epoch" if settings.max_steps <= 0 else "steps",
        save_steps=max(settings.max_steps, 1),
        save_total_limit=2,
        logging_steps=0.05,
        logging_first_step=True,
        report_to="none",
        prediction_loss_only=True,
        seed=settings.seed,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )


def dpo(settings: DPOSettings) -> dict:
    """Build the pairs, train, save, register; the run.json record."""
    from datasets import Dataset
    from transformers import set_seed
    from trl import DPOTrainer

    settings.check()
    set_seed(settings.seed)
    base = resolve_model(settings.base)
    name = settings.name or f"{Path(settings.base.rstrip('/')).name}-dpo"
    out = Path(settings.out or REPO_ROOT / "runs" / "dpo" / name).expanduser().resolve()
    resume_step = check_output(out, settings.resume)
    pairs = build_pairs(settings.data, settings.pairs)
    started = time.monotonic()
    model, tokenizer = load_base(base.path, "lora")
    check_target_modules(model, settings.target_modules)
    model = wrap_peft(model, settings)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs["train"]))
    kinds = {}
    for row in pairs["train"]:
        kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
    print(f"pairs: {len(pairs['train'])} train ({kinds}), {len(pairs['val'])} val")

    def dataset(rows: list[dict]) -> Dataset:
        fields = ("prompt", "chosen", "rejected")
        return Dataset.from_list([{k: r[k] for k in fields} for r in rows])

    trainer = DPOTrainer(
        model=model,
        args=_dpo_config(settings, out),
        train_dataset=dataset(pairs["train"]),
        eval_dataset=dataset(pairs["val"]),
        processing_class=tokenizer,
        callbacks=[metrics_callback(MetricsLog(out, resume_step))],
    )
    result = train_resumable(trainer, out, bool(settings.resume))
    evaluated = trainer.evaluate()
    final = {
        "train_loss": round(result.training_loss, 4),
        "val_loss": round(evaluated.get("eval_loss", float("nan")), 4),
        "val_reward_margin": round(evaluated.get("eval_rewards/margins", 0.0), 4),
        "val_reward_accuracy": round(evaluated.get("eval_rewards/accuracies", 0.0), 4),
        "steps": trainer.state.global_step,
        "train_seconds": round(result.metrics.get("train_runtime", 0.0), 1),
    }
    adapter = out / "adapter"
    trainer.model.save_pretrained(adapter)
    tokenizer.save_pretrained(adapter)
    config = dataclasses.asdict(settings)
    run_info = {
        "kind": "dpo",
        "command": " ".join(["python", "-m", "training", *sys.argv[1:]]),
        "config": config,
        "base": dataclasses.asdict(base),
        "parent": base.registry_name or base.path,
        "data": {"source": settings.data, "train_pairs": len(pairs["train"]), "kinds": kinds}
        | {"val_pairs": len(pairs["val"])},
        "hardware": hardware(trainer.args.device, world=1),
        "git_revision": git_revision(),
        "duration_seconds": round(time.monotonic() - started, 1),
        "final_metrics": final,
        "outputs": {"adapter": str(adapter)},
    }
    for folder in (adapter, out):
        (folder / "run.json").write_text(json.dumps(run_info, indent=2) + "\n")
    if (out / METRICS_FILE).is_file():
        (adapter / METRICS_FILE).write_bytes((out / METRICS_FILE).read_bytes())
    if settings.register:
        registry = Path(settings.registry)
        register(name, {"base": base.registry_name or base.path, "adapter": str(adapter)}, registry)
        print(f"registered {name} in {registry}")
    return run_info


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d, p = DPOSettings(), PairSettings()
    a = parser.add_argument
    a("--base", default=d.base, help="the parent: registry name, checkpoint folder or hub id")
    a("--data", default=d.data, help="corpus folder whose questions become the docs pairs")
    a("--out", help="output folder (default runs/dpo/NAME)")
    a("--name", help="model name to register (default <base>-dpo)")
    a("--max-pairs", type=int, default=p.max_pairs, help="training pairs")
    a("--max-eval-pairs", type=int, default=p.max_eval_pairs, help="validation pairs")
    a("--safety-share", type=float, default=p.safety_share, help="share of refusal pairs")
    a("--sources", type=int, dest="n_sources", default=p.n_sources, help="sources per prompt")
    a("--source-chars", type=int, default=p.source_chars, help="characters of each source")
    a("--epochs", type=float, default=d.epochs)
    a("--max-steps", type=int, default=d.max_steps, help="stop after this many steps")
    a("--max-length", type=int, default=d.max_length, help="tokens of prompt and answer")
    a("--batch-size", type=int, default=d.batch_size)
    a("--grad-accum", type=int, default=d.grad_accum)
    a("--lr", type=float, dest="learning_rate", default=d.learning_rate)
    a("--beta", type=float, default=d.beta, help="DPO's KL strength")
    a("--schedule", default=d.schedule, help="cosine, linear, constant, ...")
    a("--warmup", type=float, default=d.warmup, help="warm-up steps, or a fraction < 1")
    a("--rank", type=int, default=d.rank)
    a("--alpha", type=float, default=d.alpha)
    a("--dropout", type=float, default=d.dropout)
    a("--target-modules", default=",".join(d.target_modules), help="comma list or all-linear")
    a(
        "--lora-layers",
        type=lambda v: None if v == "all" else int(v),
        default=d.lora_layers,
        help="LoRA on the last N decoder layers only; 'all' for every layer",
    )
    a("--seed", type=int, default=d.seed)
    a("--resume", action="store_true", help="continue from the last Trainer checkpoint")
    a("--no-register", dest="register", action="store_false", help="do not touch runs/models.yaml")
    a("--registry", default=d.registry, help="the run registry file to add the model to")


def settings_from_args(args: argparse.Namespace) -> DPOSettings:
    values = vars(args)
    pair_fields = {f.name for f in dataclasses.fields(PairSettings)}
    pairs = PairSettings(**{k: v for k, v in values.items() if k in pair_fields})
    fields = {f.name for f in dataclasses.fields(DPOSettings)} - {"pairs"}
    chosen = {k: v for k, v in values.items() if k in fields}
    chosen["target_modules"] = [t.strip() for t in args.target_modules.split(",") if t.strip()]
    return DPOSettings(**chosen, pairs=pairs)


def run(args: argparse.Namespace) -> None:
    from chatforge.journal import append_entry

    settings = settings_from_args(args)
    info = dpo(settings)
    print(json.dumps(info["final_metrics"], indent=2))
    append_entry(
        "training",
        f"dpo of {settings.base}",
        info["final_metrics"],
        artifacts=list(info["outputs"].values()),
    )
