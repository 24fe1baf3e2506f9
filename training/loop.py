"""The training loop shared by `pretrain` and `sft`, with the whole vocabulary of training.

Every knob is a field of `TrainConfig` and a flag of the same name: epochs and steps,
batch / micro-batch / gradient accumulation, warmup then cosine or linear decay, AdamW or
Muon, weight decay, gradient clipping, validation every N steps, early stopping with
patience, bf16 autocast and `torch.compile` on CUDA, atomic checkpoints and exact resume,
and DDP under torchrun.

Design decisions:
- The loss is summed over target tokens and divided by the number of target tokens in the
  whole step (all micro-batches, all processes), so 4 micro-batches of 8 give the same
  gradient as one batch of 32, and a masked SFT batch is weighted per token, not per row.
- Ctrl-C (SIGINT, which torchrun forwards to every process) does not kill a step half way:
  it sets a flag, the step finishes, every process agrees to stop, and the checkpoint is
  written; `--resume` then continues exactly, because data order and schedule are
  functions of the step and everything else is in the checkpoint. A second Ctrl-C exits at once.
- `metrics.jsonl` gets one row per logged step (step, epoch, tokens seen, train loss, val
  loss when measured, lr, tokens/s, FLOPs, gradient norm); rows past the checkpoint are
  dropped on resume so the curve has no duplicates. `run.json` says how the run was made
  and how it ended (completed, early-stopped or interrupted).
- A run is a pure function of its settings at a fixed CPU thread count: the kernels split
  their sums by thread, so 1 and 2 threads part in the last bits from the third step and
  the curves drift apart from there. `--threads` fixes the count (recorded in run.json,
  like the count used) instead of leaving it to $OMP_NUM_THREADS; it is not a trajectory
  setting, so a run may resume on another count.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from chatforge.journal import git_revision
from training import checkpoint, distributed, runinfo
from training.batches import RowOrder, TokenRows
from training.errors import TrainingError
from training.metrics_log import MetricsLog
from training.model import GPT, GPTConfig
from training.optim import build_optimizers, lr_multiplier, set_lr

# Settings that change the trajectory: a resumed run must use the same values.
TRAJECTORY = (
    "seq_len", "batch_size", "epochs", "max_steps", "lr", "muon_lr", "min_lr_ratio",
    "warmup_steps", "decay", "optimizer", "weight_decay", "beta1", "beta2", "grad_clip",
    "seed",
)  # fmt: skip


@dataclass
class TrainConfig:
    out: Path
    seq_len: int = 256
    batch_size: int = 32
    micro_batch_size: int = 8
    epochs: float | None = None
    max_steps: int | None = None
    lr: float = 3e-3
    muon_lr: float = 0.02
    min_lr_ratio: float = 0.1
    warmup_steps: int = 20
    decay: str = "cosine"
    optimizer: str = "adamw"
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_every: int = 50
    eval_batches: int = 4
    patience: int = 0
    min_delta: float = 0.0
    log_every: int = 10
    save_every: int = 100
    seed: int = 0
    dtype: str = "auto"
    compile: str = "auto"
    device: str = "auto"
    threads: int = 0
    resume: bool = False

    def to_dict(self) -> dict:
        return {
            k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()
        }


HELP = {
    "seq_len": "tokens per training row (context length)",
    "batch_size": "rows per optimizer step, over all processes",
    "micro_batch_size": "rows per forward/backward; batch/(micro x processes) = accumulation",
    "epochs": "passes over the training rows, a float (1 if neither this nor --max-steps)",
    "max_steps": "optimizer steps (with --epochs, whichever ends first)",
    "lr": "peak AdamW learning rate",
    "muon_lr": "peak Muon learning rate (--optimizer muon: block matrices)",
    "min_lr_ratio": "final learning rate as a fraction of the peak",
    "warmup_steps": "linear warmup steps",
    "decay": "cosine | linear | constant after warmup",
    "optimizer": "adamw | muon (Muon for block matrices, AdamW for the rest)",
    "weight_decay": "decoupled weight decay of weight matrices",
    "beta1": "AdamW beta1",
    "beta2": "AdamW beta2",
    "grad_clip": "clip the gradient norm to this (0: off)",
    "eval_every": "validate every N steps (and at the end)",
    "eval_batches": "validation batches of --batch-size rows",
    "patience": "stop after this many validations without improvement (0: off)",
    "min_delta": "improvement in val loss that resets the patience",
    "log_every": "write a metrics row every N steps",
    "save_every": "checkpoint every N steps (and at the end or on Ctrl-C)",
    "seed": "seed of the initial weights and the data order",
    "dtype": "auto | float32 | bfloat16 (autocast; auto: bf16 on CUDA)",
    "compile": "auto | on | off (torch.compile; auto: on for CUDA)",
    "device": "auto | cpu | cuda",
    "threads": "CPU threads of this process (0: torch's default, from $OMP_NUM_THREADS or "
    "the cores); the sums inside the kernels, so the loss curve, depend on it",
}
CHOICES = {
    "decay": ["cosine", "linear", "constant"],
    "optimizer": ["adamw", "muon"],
    "dtype": ["auto", "float32", "bfloat16"],
    "compile": ["auto", "on", "off"],
}


def add_training_arguments(parser: argparse.ArgumentParser, **defaults) -> None:
    """One flag per TrainConfig field; `defaults` overrides the dataclass defaults."""
    group = parser.add_argument_group("training")
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("out", "resume"):
            continue
        default = defaults.get(f.name, f.default)
        kind = {"epochs": float, "max_steps": int}.get(f.name, type(f.default))
        group.add_argument(
            "--" + f.name.replace("_", "-"),
            type=kind,
            default=default,
            choices=CHOICES.get(f.name),
            help=f"{HELP[f.name]} (default {default})",
        )
    group.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its checkpoint"
    )


def config_from_args(args: argparse.Namespace, out: Path) -> TrainConfig:
    values = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if f.name != "out"
    }
    return TrainConfig(out=out, **values)


@dataclass
class TrainResult:
    status: str  # completed | early-stopped | interrupted
    step: int
    total_steps: int
    epoch: float
    tokens_seen: int
    train_loss: float
    val_loss: float
    best_val_loss: float
    duration_s: float
    parameters: int
    extra: dict = field(default_factory=dict)


def accumulate_gradients(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    micro_batch_size: int,
    divisor: float,
    autocast=contextlib.nullcontext,
) -> torch.Tensor:
    """Backward over `inputs` in micro-batches; gradients sum to d(total loss / divisor).
    Under DDP, gradient sync happens only on the last micro-batch."""
    total = torch.zeros((), device=inputs.device)
    starts = list(range(0, len(inputs), micro_batch_size))
    for i, start in enumerate(starts):
        last = i == len(starts) - 1
        sync = (
            model.no_sync() if hasattr(model, "no_sync") and not last else contextlib.nullcontext()
        )
        with sync:
            with autocast():
                loss_sum, _ = model(
                    inputs[start : start + micro_batch_size],
                    targets[start : start + micro_batch_size],
                )
            (loss_sum / divisor).backward()
        total += loss_sum.detach().float()
    return total


class _StopFlag:
    """Ctrl-C sets a flag; the loop stops after the current step. Twice: exit now."""

    def __init__(self) -> None:
        self.requested = False
        self.previous = None

    def __enter__(self) -> _StopFlag:
        with contextlib.suppress(ValueError):  # not the main thread: no handler
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _param_hash(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for param in model.state_dict().values():
        digest.update(param.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@torch.no_grad()
def evaluate(
    model: GPT, rows: TokenRows, cfg: TrainConfig, ctx: distributed.Dist, autocast
) -> float:
    """Mean loss per target token over the first `eval_batches` batches of `rows`."""
    model.eval()
    limit = min(len(rows), cfg.eval_batches * cfg.batch_size)
    mine = list(range(ctx.rank, limit, ctx.world))
    loss_sum, count = 0.0, 0.0
    for start in range(0, len(mine), cfg.micro_batch_size):
        x, y = rows.get(mine[start : start + cfg.micro_batch_size])
        with autocast():
            loss, n = model(x.to(ctx.device), y.to(ctx.device))
        loss_sum += float(loss)
        count += int(n)
    model.train()
    total = ctx.sum(count)
    return ctx.sum(loss_sum) / total if total else float("nan")


def _plan(cfg: TrainConfig, n_rows: int, world: int) -> tuple[RowOrder, int, int]:
    if cfg.batch_size % world or (cfg.batch_size // world) % cfg.micro_batch_size:
        raise TrainingError(
            f"--batch-size {cfg.batch_size} must split into {world} process(es) x whole "
            f"micro-batches of --micro-batch-size {cfg.micro_batch_size}"
        )
    order = RowOrder(n_rows, cfg.batch_size, cfg.seed)
    if order.steps_per_epoch == 0:
        raise TrainingError(
            f"the training data has {n_rows} rows of {cfg.seq_len + 1} tokens, fewer than one "
            f"batch of {cfg.batch_size}: lower --batch-size or --seq-len, or add data"
        )
    if cfg.epochs is None and cfg.max_steps is None:
        raise TrainingError("give --epochs or --max-steps")
    limits = []
    if cfg.epochs is not None:
        limits.append(max(1, math.ceil(cfg.epochs * order.steps_per_epoch)))
    if cfg.max_steps is not None:
        limits.append(cfg.max_steps)
    return order, min(limits), (cfg.batch_size // world) // cfg.micro_batch_size


def write_run_json(out: Path, data: dict) -> None:
    path = out / "run.json"
    tmp = out / ".run.json.tmp"
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


def train(
    cfg: TrainConfig,
    model_config: GPTConfig,
    train_rows: TokenRows,
    val_rows: TokenRows,
    run_meta: dict,
    init_state: dict | None = None,
) -> TrainResult:
    """Train (or resume) a GPT; checkpoints, metrics and run.json go to `cfg.out`."""
    ctx = distributed.setup(cfg.device)
    try:
        result = _train(cfg, model_config, train_rows, val_rows, run_meta, init_state, ctx)
        ctx.wait_for_all()  # on success only: after a failure the others may never arrive
        return result
    finally:
        ctx.close()


def _train(cfg, model_config, train_rows, val_rows, run_meta, init_state, ctx) -> TrainResult:
    out = Path(cfg.out)
    ckpt_path = out / checkpoint.CHECKPOINT
    if ckpt_path.exists() and not cfg.resume:
        raise TrainingError(
            f"{out} already holds a run: pass --resume to continue it, or another --out"
        )
    if cfg.resume and not ckpt_path.exists():
        raise TrainingError(f"--resume: no checkpoint in {out} to continue from")
    order, total_steps, accum = _plan(cfg, len(train_rows), ctx.world)
    on_cuda = ctx.device.type == "cuda"
    use_bf16 = cfg.dtype == "bfloat16" or (cfg.dtype == "auto" and on_cuda)
    use_compile = cfg.compile == "on" or (cfg.compile == "auto" and on_cuda)

    def autocast():
        if use_bf16:
            return torch.autocast(ctx.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    if cfg.threads < 0:
        raise TrainingError(
            f"--threads {cfg.threads}: give a count of CPU threads, or 0 for torch's default"
        )
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = GPT(model_config)
    state = {"step": 0, "best_val": math.inf, "evals_since_best": 0, "elapsed": 0.0}
    saved = None
    if cfg.resume:
        saved = checkpoint.load(ckpt_path)
        checkpoint.check_same(
            saved["model_config"], model_config.to_dict(), "model settings", ckpt_path
        )
        wanted = {k: cfg.to_dict()[k] for k in TRAJECTORY}
        checkpoint.check_same(saved["train_config"], wanted, "training settings", ckpt_path)
        model.load_state_dict(saved["model"])
        state = saved["state"]
    elif init_state is not None:
        model.load_state_dict(init_state)
    model.to(ctx.device)
    optimizers = build_optimizers(
        model, cfg.optimizer, cfg.lr, cfg.muon_lr, cfg.weight_decay, (cfg.beta1, cfg.beta2), on_cuda
    )
    if saved is not None:
        for optimizer, optimizer_state in zip(optimizers, saved["optimizers"], strict=True):
            optimizer.load_state_dict(optimizer_state)
    step = state["step"]
    runner: torch.nn.Module = model
    if ctx.active:
        runner = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[ctx.local_rank] if on_cuda else None
        )
    if use_compile:
        runner = torch.compile(runner)

    if ctx.main:
        out.mkdir(parents=True, exist_ok=True)
    metrics = MetricsLog(out, step if cfg.resume else None, enabled=ctx.main)
    tokens_per_step = cfg.batch_size * cfg.seq_len
    flops_per_token = model.flops_per_token(cfg.seq_len)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    info = {
        **run_meta,
        "started": started,
        "config": {"model": model_config.to_dict(), "train": cfg.to_dict()},
        "parameters": model.num_parameters(),
        "parameters_without_embeddings": model.num_parameters(embeddings=False),
        "flops_per_token": flops_per_token,
        "steps_per_epoch": order.steps_per_epoch,
        "total_steps": total_steps,
        "gradient_accumulation": accum,
        "hardware": runinfo.hardware(ctx.device, ctx.world),
        "git_revision": git_revision(),
        "precision": "bf16 autocast" if use_bf16 else "fp32",
        "compiled": use_compile,
    }

    def save(path: Path, full: bool) -> None:
        if not ctx.main:
            return
        payload = {"model_config": model_config.to_dict(), "model": model.state_dict()}
        if full:
            payload.update(
                optimizers=[o.state_dict() for o in optimizers],
                state=state,
                train_config={k: cfg.to_dict()[k] for k in TRAJECTORY},
            )
        checkpoint.save_atomic(payload, path)

    def record(status: str, last_train: float, last_val: float) -> TrainResult:
        result = TrainResult(
            status=status,
            step=step,
            total_steps=total_steps,
            epoch=step / order.steps_per_epoch,
            tokens_seen=step * tokens_per_step,
            train_loss=last_train,
            val_loss=last_val,
            best_val_loss=state["best_val"],
            duration_s=state["elapsed"],
            parameters=model.num_parameters(),
        )
        if ctx.active:
            result.extra["replica_checksums"] = ctx.gather(_param_hash(model))
        if ctx.main:
            write_run_json(out, {**info, **dataclasses.asdict(result)})
        return result

    if ctx.main:
        write_run_json(out, {**info, "status": "running", "step": step})
    bar = tqdm(
        total=total_steps, initial=step, disable=not ctx.main, unit="step", desc=run_meta["kind"]
    )
    status, last_train, last_val = "completed", math.nan, math.nan
    window_loss, window_steps, window_start = 0.0, 0, time.perf_counter()
    run_start = time.perf_counter() - state["elapsed"]
    with _StopFlag() as stop:
        while step < total_steps:
            indices = order.batch(step)[ctx.rank :: ctx.world]
            x, y = train_rows.get(indices)
            x, y = x.to(ctx.device), y.to(ctx.device)
            targets = ctx.sum(int((y != -100).sum()))
            set_lr(
                optimizers,
                lr_multiplier(step, total_steps, cfg.warmup_steps, cfg.decay, cfg.min_lr_ratio),
            )
            loss_sum = accumulate_gradients(
                runner, x, y, cfg.micro_batch_size, max(targets, 1) / ctx.world, autocast
            )
            clip = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip))
            for optimizer in optimizers:
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            step += 1
            state["step"] = step
            last_train = ctx.sum(float(loss_sum)) / max(targets, 1)
            window_loss += last_train
            window_steps += 1
            state["elapsed"] = time.perf_counter() - run_start
            row = None
            if step % cfg.log_every == 0 or step == total_steps:
                now = time.perf_counter()
                row = {
                    "step": step,
                    "epoch": round(step / order.steps_per_epoch, 4),
                    "tokens_seen": step * tokens_per_step,
                    "train_loss": window_loss / window_steps,
                    "lr": optimizers[-1].param_groups[0]["lr"],
                    "tokens_per_second": window_steps
                    * tokens_per_step
                    / max(now - window_start, 1e-9),
                    "flops": step * tokens_per_step * flops_per_token,
                    "grad_norm": grad_norm,
                }
                window_loss, window_steps, window_start = 0.0, 0, now
            stopping = False
            if (cfg.eval_every and step % cfg.eval_every == 0) or step == total_steps:
                last_val = evaluate(model, val_rows, cfg, ctx, autocast)
                row = row or {"step": step, "epoch": round(step / order.steps_per_epoch, 4)}
                row["val_loss"] = last_val
                if last_val < state["best_val"] - cfg.min_delta:
                    state["best_val"], state["evals_since_best"] = last_val, 0
                    save(out / checkpoint.BEST, full=False)
                else:
                    state["evals_since_best"] += 1
                    if cfg.patience and state["evals_since_best"] >= cfg.patience:
                        status, stopping = "early-stopped", True
                bar.write(
                    f"step {step}/{total_steps} epoch {step / order.steps_per_epoch:.2f}: "
                    f"train loss {last_train:.4f} val loss {last_val:.4f}"
                )
            if row is not None:
                metrics.write(row)
            bar.set_postfix(loss=f"{last_train:.3f}", epoch=f"{step / order.steps_per_epoch:.2f}")
            bar.update()
            if ctx.sum(stop.requested) > 0:
                status, stopping = "interrupted", True
            if stopping or (cfg.save_every and step % cfg.save_every == 0):
                save(ckpt_path, full=True)
            if stopping:
                break
    bar.close()
    save(ckpt_path, full=True)
    return record(status, last_train, last_val)
