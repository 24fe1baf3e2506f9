"""`python -m training sweep`: several depths at a few fixed compute budgets (a small
scaling-law study), written as a table and a PNG plot of val loss against parameters,
tokens and FLOPs.

Design decisions:
- A budget is training FLOPs (6 x matmul weights x tokens + attention, the estimate the
  loop logs). For each depth the number of steps is the budget divided by the FLOPs of
  one step, so every point of a budget line cost the same compute; the smallest loss on a
  line marks the compute-optimal size for that budget.
- Every point is an ordinary pretraining run in its own folder, trained by the same loop
  with the same data, batch and schedule; a finished run is reused, so an interrupted
  sweep continues where it stopped.
- The defaults fit a 2-core CPU (minutes, tiny widths); on a GPU pass larger `--depths`,
  `--budgets` and `--seq-len`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.corpus import REPO_ROOT
from training.errors import TrainingError
from training.loop import TrainConfig, train
from training.model import GPT, GPTConfig
from training.pretrain import corpus_rows, load_tokenizer


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", type=Path, default=REPO_ROOT / "runs/data/pydocs")
    parser.add_argument("--tokenizer", type=Path, default=REPO_ROOT / "runs/scratch/tokenizer")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs/sweep")
    parser.add_argument("--depths", type=_ints, default=[1, 2, 3], help="e.g. 1,2,3")
    parser.add_argument("--budgets", type=_floats, default=[3e11, 1e12, 3e12], help="FLOPs")
    parser.add_argument("--aspect", type=int, default=64)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--eval-batches", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)


def plan(depths, budgets, vocab, args) -> list[dict]:
    points = []
    for budget in budgets:
        for depth in depths:
            config = GPTConfig.from_depth(depth, vocab, args.seq_len, args.aspect, args.head_dim)
            model = GPT(config)
            per_step = model.flops_per_token(args.seq_len) * args.batch_size * args.seq_len
            steps = int(budget // per_step)
            if steps < 1:
                raise TrainingError(
                    f"budget {budget:.3g} FLOPs is less than one step of depth {depth} "
                    f"({per_step:.3g} FLOPs): raise --budgets or lower --batch-size"
                )
            points.append(
                {
                    "budget": budget,
                    "depth": depth,
                    "config": config,
                    "steps": steps,
                    "parameters": model.num_parameters(),
                    "flops": steps * per_step,
                    "tokens": steps * args.batch_size * args.seq_len,
                }
            )
    return points


def write_outputs(rows: list[dict], out: Path) -> tuple[Path, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = out / "sweep.md"
    lines = [
        "| budget (FLOPs) | depth | parameters | tokens | FLOPs | steps | val loss |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['budget']:.1e} | {r['depth']} | {r['parameters']:,} | {r['tokens']:,} "
            f"| {r['flops']:.2e} | {r['steps']} | {r['val_loss']:.4f} |"
        )
    table.write_text("\n".join(lines) + "\n")
    (out / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n")
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5), sharey=True)
    for budget in sorted({r["budget"] for r in rows}):
        line = sorted((r for r in rows if r["budget"] == budget), key=lambda r: r["parameters"])
        for axis, key in zip(axes, ("parameters", "tokens", "flops"), strict=True):
            axis.plot(
                [r[key] for r in line],
                [r["val_loss"] for r in line],
                marker="o",
                label=f"{budget:.0e} FLOPs",
            )
    for axis, label in zip(axes, ("parameters", "training tokens", "training FLOPs"), strict=True):
        axis.set_xscale("log")
        axis.set_xlabel(label)
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("val loss (nats/token)")
    axes[0].legend(title="compute budget")
    figure.suptitle("val loss of depth sweeps at fixed compute")
    figure.tight_layout()
    plot = out / "sweep.png"
    figure.savefig(plot, dpi=110)
    plt.close(figure)
    return table, plot


def run(args: argparse.Namespace) -> None:
    from chatforge.journal import append_entry, current_command

    tokenizer = load_tokenizer(args.tokenizer)
    data = corpus_rows(tokenizer, args.corpus, args.seq_len)
    train_rows, val_rows = data.train_rows, data.val_rows
    points = plan(args.depths, args.budgets, len(tokenizer), args)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, point in enumerate(points, 1):
        folder = args.out / f"budget{point['budget']:.0e}-depth{point['depth']}"
        print(
            f"[{i}/{len(points)}] depth {point['depth']} ({point['parameters']:,} parameters), "
            f"{point['steps']} steps = {point['flops']:.2e} FLOPs -> {folder.name}",
            flush=True,
        )
        run_json = folder / "run.json"
        finished = json.loads(run_json.read_text()) if run_json.is_file() else {}
        if finished.get("status") == "completed":
            val_loss = finished["best_val_loss"]
        else:
            cfg = TrainConfig(
                out=folder,
                seq_len=args.seq_len,
                batch_size=args.batch_size,
                micro_batch_size=args.batch_size,
                max_steps=point["steps"],
                lr=args.lr,
                warmup_steps=max(1, point["steps"] // 20),
                eval_every=0,
                eval_batches=args.eval_batches,
                log_every=max(1, point["steps"] // 20),
                save_every=max(1, point["steps"] // 4),
                seed=args.seed,
                resume=(folder / "checkpoint.pt").is_file(),
            )
            meta = {
                "kind": "sweep",
                "command": current_command(),
                "data": {"corpus": str(args.corpus)},
            }
            result = train(cfg, point["config"], train_rows, val_rows, meta)
            if result.status == "interrupted":
                print("sweep interrupted; rerun the same command to continue")
                raise KeyboardInterrupt
            val_loss = result.best_val_loss
        rows.append({k: v for k, v in point.items() if k != "config"} | {"val_loss": val_loss})
    table, plot = write_outputs(rows, args.out)
    print(table.read_text())
    print(f"wrote {table} and {plot}")
    best = {
        f"best depth at {b:.0e}": min(
            (r for r in rows if r["budget"] == b), key=lambda r: r["val_loss"]
        )["depth"]
        for b in args.budgets
    }
    append_entry(
        "sweep",
        f"depths {args.depths} x budgets {args.budgets}",
        best,
        [table, plot],
    )
