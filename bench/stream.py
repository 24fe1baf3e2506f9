"""Streaming overhead of the gRPC server against the in-process engine, same run.

For the same prompt and settings (greedy, so both produce the same tokens), measure time to
first token and decode tokens/s (a) straight through the engine in this process, (b)
through a real server process and the Python client, and (c) through a second server whose
output guardrails are off, taking turns so drift in the machine's load affects all alike.
Prints medians and the ratios against (a), and the cost per 1,000 generated tokens of the
served path (deploy/prices.yaml, bench/cost.py); writes JSON under runs/bench/ and a
daily-log entry.

    python bench/stream.py [--runs 7] [--max-tokens 128] [--config models.yaml] [--model M]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backend.client import ChatClient  # noqa: E402
from backend.launcher import BackendProcess  # noqa: E402
from backend.model_loader import load_model  # noqa: E402
from backend.registry import DEFAULT_CONFIG, load_registry  # noqa: E402
from backend.sampling import SamplingConfig  # noqa: E402
from bench.cost import (  # noqa: E402
    add_cost_flags,
    describe_serving,
    detect_hardware,
    load_prices,
    serving_cost,
)
from chatforge.journal import append_entry  # noqa: E402

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def timings(start: float, stamps: list[tuple[float, int]]) -> dict[str, float]:
    """TTFT and decode tokens/s from (arrival time, tokens in that piece) stamps."""
    tokens = sum(n for _, n in stamps)
    first, last = stamps[0][0], stamps[-1][0]
    decode_tokens = tokens - stamps[0][1]
    return {
        "ttft_ms": (first - start) * 1000,
        "tokens_per_s": decode_tokens / (last - first) if last > first else 0.0,
        "tokens": tokens,
    }


def run_in_process(loaded, prompt_ids: list[int], config: SamplingConfig) -> dict[str, float]:
    start = time.perf_counter()
    stamps = [(time.perf_counter(), 1) for _ in loaded.engine.submit(prompt_ids, config)]
    return timings(start, stamps)


def run_grpc(client: ChatClient, model: str, max_tokens: int) -> dict[str, float]:
    start = time.perf_counter()
    stamps = []
    sampling = {"temperature": 0.0, "max_tokens": max_tokens}
    for event in client.chat(PROMPT, model=model, sampling=sampling):
        if event.HasField("delta"):
            stamps.append((time.perf_counter(), event.delta.token_count))
    return timings(start, stamps)


def median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


# The output guardrails hold back the trailing word of the stream until it cannot become
# personal data; that costs the first delta one decode step. Measuring the server with
# and without them separates the transport's cost from the guardrails'.
NO_OUTPUT_CHECKS = "categories:\n  pii: {action: allow}\n  prompt_leak: {action: allow}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--model", default="", help="registry name (default: the default)")
    parser.add_argument("--out", default=str(REPO / "runs" / "bench"))
    add_cost_flags(parser)
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    prices = load_prices(args.prices)

    registry = load_registry(args.config)
    name = args.model or registry.default_model
    if name not in registry.models:
        parser.error(f"--model: unknown model {name!r}; known: {', '.join(registry.models)}")
    loaded = load_model(registry.models[name])
    prompt_ids = loaded.codec.encode_chat([{"role": "user", "content": PROMPT}])
    config = SamplingConfig(temperature=0.0, max_tokens=args.max_tokens)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    policy = out / "stream-bench-policy.yaml"
    policy.write_text(NO_OUTPUT_CHECKS)
    # The response cache would answer the repeated greedy prompt without decoding: off.
    no_cache = ["--cache-entries", "0"]
    servers = {
        "grpc": BackendProcess(args.config, extra_args=no_cache),
        "grpc_no_output_checks": BackendProcess(
            args.config, extra_args=[*no_cache, "--policy", str(policy)]
        ),
    }
    rows: dict[str, list[dict[str, float]]] = {"in_process": [], **{k: [] for k in servers}}
    with servers["grpc"], servers["grpc_no_output_checks"]:
        clients = {k: ChatClient(s.target) for k, s in servers.items()}
        for client in clients.values():  # warm-up: first-call costs on every path
            run_grpc(client, name, args.max_tokens)
        run_in_process(loaded, prompt_ids, config)
        for i in range(args.runs):
            rows["in_process"].append(run_in_process(loaded, prompt_ids, config))
            for key, client in clients.items():
                rows[key].append(run_grpc(client, name, args.max_tokens))
            print(
                f"run {i + 1}/{args.runs}: "
                + " | ".join(
                    f"{k} {r[-1]['tokens_per_s']:.1f} tok/s ttft {r[-1]['ttft_ms']:.1f} ms"
                    for k, r in rows.items()
                )
            )
        for client in clients.values():
            client.close()
    loaded.engine.stop()

    result: dict = {
        "model": name,
        "prompt_tokens": len(prompt_ids),
        "max_tokens": args.max_tokens,
        "runs": args.runs,
    }
    for key, key_rows in rows.items():
        result[key] = {
            "tokens_per_s": median(key_rows, "tokens_per_s"),
            "ttft_ms": median(key_rows, "ttft_ms"),
            "rows": key_rows,
        }
    base = result["in_process"]
    for key in servers:
        result[key]["tokens_per_s_ratio"] = result[key]["tokens_per_s"] / base["tokens_per_s"]
        result[key]["added_ttft_ms"] = result[key]["ttft_ms"] - base["ttft_ms"]
    result["cost"] = serving_cost(
        prices,
        args.hardware or detect_hardware(),
        result["grpc"]["tokens_per_s"],
        median(rows["grpc"], "tokens"),
    )
    path = out / f"stream-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))

    print(f"\nmedians over {args.runs} runs ({name}, {args.max_tokens} tokens, greedy):")
    for key in rows:
        print(
            f"  {key:22s} {result[key]['tokens_per_s']:6.1f} tok/s, "
            f"ttft {result[key]['ttft_ms']:7.1f} ms"
        )
    for key in servers:
        print(
            f"  {key} / in-process tokens/s: {result[key]['tokens_per_s_ratio']:.3f}x "
            f"(target >= 0.95); added time to first token: "
            f"{result[key]['added_ttft_ms']:+.1f} ms (target <= 15)"
        )
    print(f"  one stream through the server, {describe_serving(result['cost'])}")
    print(f"  written {path}")
    numbers: dict[str, object] = {"model": name, "runs": args.runs}
    numbers["USD per 1k tokens (one stream)"] = result["cost"]["usd_per_1k_tokens_backend"]
    for key in servers:
        numbers[f"{key} tok/s ratio"] = result[key]["tokens_per_s_ratio"]
        numbers[f"{key} added TTFT ms"] = result[key]["added_ttft_ms"]
    append_entry(
        "bench",
        "stream (gRPC vs in-process engine)",
        numbers,
        artifacts=[path],
    )


if __name__ == "__main__":
    main()
