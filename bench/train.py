"""Training throughput: our GPT against transformers' LlamaForCausalLM of the same shape.

Both models get the same weights (ours exported through `training.export.to_llama`), the
same loop (`training.loop.accumulate_gradients`, AdamW, clipping), the same batch and the
same precision, in the same process; rounds alternate between them, in alternating order,
so background load hits both alike. Prints tokens/s of each and their ratio; on CUDA also
model FLOPs utilisation (MFU = FLOPs/token x tokens/s / peak bf16 FLOPs), and what a
million training tokens and a run of `--run-tokens` cost at our model's rate
(deploy/prices.yaml, bench/cost.py). Writes JSON and a daily-log entry.

    python bench/train.py                    # CPU: a 4-layer, 256-wide model, seq 256
    python bench/train.py --preset gpu-150m  # CUDA: ~150M parameters, seq 1024, bf16 + compile

Targets (issue 3): on CPU >= 1.0x the transformers model; on CUDA MFU >= 45%.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.cost import add_cost_flags, load_prices, training_cost  # noqa: E402
from chatforge.journal import append_entry  # noqa: E402
from training.bpe import train_tokenizer  # noqa: E402
from training.export import to_llama  # noqa: E402
from training.loop import accumulate_gradients  # noqa: E402
from training.model import GPT, GPTConfig, summed_loss  # noqa: E402

PRESETS = {
    "cpu": dict(n_layer=4, n_embd=256, n_head=4, n_kv_head=2, intermediate_size=688,
                vocab_size=4096, seq_len=256, batch_size=16, micro_batch_size=16),
    "gpu-150m": dict(n_layer=12, n_embd=768, n_head=12, n_kv_head=4, intermediate_size=2048,
                     vocab_size=50304, seq_len=1024, batch_size=32, micro_batch_size=16,
                     tie_embeddings=False),
}  # fmt: skip
# Dense bf16 peak FLOP/s by device name (tensor cores, no sparsity).
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}


class LlamaLoss(torch.nn.Module):
    """transformers' model behind our loop's interface: (summed loss, target count)."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, idx, targets):
        return summed_loss(self.model(input_ids=idx).logits, targets)


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), help="default: gpu-150m on CUDA")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (and compiles)")
    parser.add_argument("--compile", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--peak-flops", type=float, help="override the device's bf16 peak")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench")
    parser.add_argument(
        "--run-tokens", type=int, default=100_000_000, help="tokens of the run to price"
    )
    add_cost_flags(parser)
    args = parser.parse_args()
    prices = load_prices(args.prices)  # a bad table fails before the benchmark, not after

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    preset = dict(PRESETS[args.preset or ("gpu-150m" if device.type == "cuda" else "cpu")])
    seq_len, batch = preset.pop("seq_len"), preset.pop("batch_size")
    micro = preset.pop("micro_batch_size")
    config = GPTConfig(max_seq_len=seq_len, **preset)
    on_cuda = device.type == "cuda"
    use_compile = args.compile == "on" or (args.compile == "auto" and on_cuda)
    autocast = (
        (lambda: torch.autocast("cuda", dtype=torch.bfloat16))
        if on_cuda
        else contextlib.nullcontext
    )
    torch.manual_seed(0)
    ours = GPT(config)
    tokenizer = train_tokenizer([__doc__] * 4, vocab_size=300)  # only its special ids matter
    theirs = to_llama(ours, tokenizer)  # identical weights: exported from ours
    theirs.config.use_cache = False
    models = {"ours": ours.to(device).train(), "transformers": LlamaLoss(theirs).to(device).train()}
    runners = {k: torch.compile(m) if use_compile else m for k, m in models.items()}
    optimizers = {
        k: torch.optim.AdamW(m.parameters(), lr=1e-4, fused=on_cuda) for k, m in models.items()
    }
    generator = torch.Generator().manual_seed(0)
    rows = torch.randint(0, config.vocab_size, (batch, seq_len + 1), generator=generator)
    x, y = rows[:, :-1].to(device), rows[:, 1:].to(device)

    def step(name: str) -> float:
        loss = accumulate_gradients(runners[name], x, y, micro, float(y.numel()), autocast)
        torch.nn.utils.clip_grad_norm_(models[name].parameters(), 1.0)
        optimizers[name].step()
        optimizers[name].zero_grad(set_to_none=True)
        return float(loss) / y.numel()

    first = {name: step(name) for name in models}  # same weights, same batch: same loss
    for name in models:
        for _ in range(args.warmup - 1):
            step(name)
    speeds: dict[str, list[float]] = {name: [] for name in models}
    for round_ in range(args.rounds):
        order = list(models) if round_ % 2 == 0 else list(reversed(models))  # no order bias
        for name in order:
            if on_cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(args.steps):
                step(name)
            if on_cuda:
                torch.cuda.synchronize()
            speeds[name].append(args.steps * batch * seq_len / (time.perf_counter() - start))
    tokens_per_s = {name: statistics.median(v) for name, v in speeds.items()}
    ratio = tokens_per_s["ours"] / tokens_per_s["transformers"]
    flops_per_token = ours.flops_per_token(seq_len)
    peak = args.peak_flops or peak_flops(device)
    result = {
        "device": torch.cuda.get_device_name(device) if on_cuda else "cpu",
        "torch_threads": torch.get_num_threads(),
        "precision": "bf16 autocast" if on_cuda else "fp32",
        "compiled": use_compile,
        "config": config.to_dict(),
        "parameters": ours.num_parameters(),
        "seq_len": seq_len,
        "batch_size": batch,
        "micro_batch_size": micro,
        "first_step_loss": first,
        "tokens_per_second": tokens_per_s,
        "tokens_per_second_rounds": speeds,
        "ratio_ours_over_transformers": ratio,
        "flops_per_token": flops_per_token,
    }
    if peak:
        result["mfu"] = {k: v * flops_per_token / peak for k, v in tokens_per_s.items()}
        result["peak_flops"] = peak
    hardware = args.hardware or ("gpu_vm" if on_cuda else "cpu_host")
    cost = training_cost(prices, hardware, tokens_per_s["ours"], args.run_tokens)
    result["cost"] = cost
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"train-{'cuda' if on_cuda else 'cpu'}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    size = f"{ours.num_parameters() / 1e6:.1f}M parameters"
    print(f"{size}, batch {batch} x {seq_len} on {result['device']}")
    print(f"first-step loss: ours {first['ours']:.5f}, transformers {first['transformers']:.5f}")
    for name, value in tokens_per_s.items():
        mfu = f", MFU {result['mfu'][name]:.1%}" if peak else ""
        print(f"  {name:12s} {value:10.0f} tokens/s{mfu}")
    print(
        f"cost on {cost['hardware']} (${cost['usd_per_hour']:.3f}/h): "
        f"${cost['usd_per_1m_tokens']:.4f} per million training tokens; a run of "
        f"{args.run_tokens:,} tokens: {cost['run_hours']:.1f} h, ${cost['usd_per_run']:.2f}"
    )
    print(f"ratio ours / transformers: {ratio:.2f}x  (written to {path})")
    numbers = {
        "ours tokens/s": tokens_per_s["ours"],
        "transformers tokens/s": tokens_per_s["transformers"],
        "ratio": ratio,
        "USD per 1M training tokens": cost["usd_per_1m_tokens"],
        f"USD per run of {args.run_tokens:,} tokens": cost["usd_per_run"],
    }
    if peak:
        numbers["ours MFU"] = result["mfu"]["ours"]
    append_entry("benchmark", f"training throughput on {result['device']}", numbers, [path])


if __name__ == "__main__":
    main()
