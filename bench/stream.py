"""Streaming overhead of the gRPC server against the in-process engine, same run.

For the same prompt and settings (greedy, so both produce the same tokens), measure time to
first token and decode tokens/s (a) straight through the engine in this process and (b)
through a real server process and the Python client, alternating the two so drift in the
machine's load affects both alike. Prints medians and the ratios, writes JSON under
runs/bench/ and a daily-log entry.

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
from evals.journal import append_entry  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--model", default="", help="registry name (default: the default)")
    parser.add_argument("--out", default=str(REPO / "runs" / "bench"))
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    registry = load_registry(args.config)
    name = args.model or registry.default_model
    if name not in registry.models:
        parser.error(f"--model: unknown model {name!r}; known: {', '.join(registry.models)}")
    loaded = load_model(registry.models[name])
    prompt_ids = loaded.codec.encode_chat([{"role": "user", "content": PROMPT}])
    config = SamplingConfig(temperature=0.0, max_tokens=args.max_tokens)

    grpc_rows, local_rows = [], []
    # The response cache would answer the repeated greedy prompt without decoding: off.
    server = BackendProcess(args.config, extra_args=["--cache-entries", "0"])
    with server, ChatClient(server.target) as client:
        run_grpc(client, name, args.max_tokens)  # warm-up: first-call costs on both sides
        run_in_process(loaded, prompt_ids, config)
        for i in range(args.runs):
            grpc_rows.append(run_grpc(client, name, args.max_tokens))
            local_rows.append(run_in_process(loaded, prompt_ids, config))
            g, p = grpc_rows[-1], local_rows[-1]
            print(
                f"run {i + 1}/{args.runs}: grpc {g['tokens_per_s']:.1f} tok/s "
                f"ttft {g['ttft_ms']:.1f} ms | in-process {p['tokens_per_s']:.1f} tok/s "
                f"ttft {p['ttft_ms']:.1f} ms"
            )
    loaded.engine.stop()

    result = {
        "model": name,
        "prompt_tokens": len(prompt_ids),
        "max_tokens": args.max_tokens,
        "runs": args.runs,
        "grpc": {"tokens_per_s": median(grpc_rows, "tokens_per_s"),
                 "ttft_ms": median(grpc_rows, "ttft_ms"), "rows": grpc_rows},
        "in_process": {"tokens_per_s": median(local_rows, "tokens_per_s"),
                       "ttft_ms": median(local_rows, "ttft_ms"), "rows": local_rows},
    }  # fmt: skip
    ratio = result["grpc"]["tokens_per_s"] / result["in_process"]["tokens_per_s"]
    added_ttft = result["grpc"]["ttft_ms"] - result["in_process"]["ttft_ms"]
    result["tokens_per_s_ratio"] = ratio
    result["added_ttft_ms"] = added_ttft
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"stream-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))

    print(
        f"\nmedians over {args.runs} runs ({name}, {args.max_tokens} tokens, greedy):\n"
        f"  in-process: {result['in_process']['tokens_per_s']:.1f} tok/s, "
        f"ttft {result['in_process']['ttft_ms']:.1f} ms\n"
        f"  gRPC:       {result['grpc']['tokens_per_s']:.1f} tok/s, "
        f"ttft {result['grpc']['ttft_ms']:.1f} ms\n"
        f"  gRPC / in-process tokens/s: {ratio:.3f}x (target >= 0.95)\n"
        f"  added time to first token: {added_ttft:+.1f} ms (target <= 15)\n"
        f"  written {path}"
    )
    append_entry(
        "bench",
        "stream (gRPC vs in-process engine)",
        {
            "model": name,
            "gRPC tok/s": result["grpc"]["tokens_per_s"],
            "in-process tok/s": result["in_process"]["tokens_per_s"],
            "ratio": ratio,
            "added TTFT ms": added_ttft,
            "runs": args.runs,
        },
        artifacts=[path.relative_to(REPO) if path.is_relative_to(REPO) else path],
    )


if __name__ == "__main__":
    main()
