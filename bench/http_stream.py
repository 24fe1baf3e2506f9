"""Streaming through the HTTP API against gRPC, on one server, in one run.

One server process serves both APIs (`--http-port 0`). For 1 and 16 concurrent streams of
the same greedy prompt, rounds alternate between gRPC (the Python client) and HTTP (SSE
read with httpx), so drift in the machine's load affects both alike. Per stream: time to
first text and decode tokens/s (tokens after the first over first-to-last text); reported
as medians over every stream of every round, with HTTP's ratio and added TTFT against
gRPC. Writes JSON under runs/bench/ and a daily-log entry.

    python bench/http_stream.py [--runs 3] [--max-tokens 48] [--config models.yaml]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backend.client import ChatClient  # noqa: E402
from backend.launcher import BackendProcess  # noqa: E402
from backend.registry import DEFAULT_CONFIG  # noqa: E402
from bench.stream import PROMPT, timings  # noqa: E402
from chatforge.journal import append_entry  # noqa: E402


def grpc_stream(target: str, max_tokens: int) -> dict[str, float]:
    sampling = {"temperature": 0.0, "max_tokens": max_tokens}
    with ChatClient(target) as client:
        start, stamps = time.perf_counter(), []
        for event in client.chat(PROMPT, sampling=sampling):
            if event.HasField("delta") and event.delta.text:
                stamps.append((time.perf_counter(), event.delta.token_count))
    return timings(start, stamps)


def http_stream(url: str, max_tokens: int) -> dict[str, float]:
    body = {
        "messages": [{"role": "user", "content": PROMPT}],
        "temperature": 0.0,
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start, arrivals, tokens = time.perf_counter(), [], 0
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=600) as reply:
        for line in reply.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            elif chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                arrivals.append(time.perf_counter())
    # SSE chunks carry no token counts: the first chunk is one token, the rest the usage's.
    stamps = [(arrivals[0], 1), *((t, 0) for t in arrivals[1:-1]), (arrivals[-1], tokens - 1)]
    return timings(start, stamps)


def round_of(streams: int, fn, *args) -> list[dict[str, float]]:
    with ThreadPoolExecutor(streams) as pool:
        return list(pool.map(lambda _: fn(*args), range(streams)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--out", default=str(REPO / "runs" / "bench"))
    args = parser.parse_args()
    results: dict[str, dict] = {}
    with BackendProcess(args.config, extra_args=["--cache-entries", "0"], http_port=0) as server:
        round_of(1, grpc_stream, server.target, 4)  # warm both paths
        round_of(1, http_stream, server.http_url, 4)
        for streams in (1, 16):
            rows: dict[str, list] = {"grpc": [], "http": []}
            for _ in range(args.runs):
                rows["grpc"] += round_of(streams, grpc_stream, server.target, args.max_tokens)
                rows["http"] += round_of(streams, http_stream, server.http_url, args.max_tokens)
            summary = {
                api: {key: statistics.median(r[key] for r in got) for key in got[0]}
                for api, got in rows.items()
            }
            grpc, http = summary["grpc"], summary["http"]
            summary["http_tokens_per_s_ratio"] = http["tokens_per_s"] / grpc["tokens_per_s"]
            summary["http_added_ttft_ms"] = http["ttft_ms"] - grpc["ttft_ms"]
            results[f"{streams}_streams"] = summary
            print(f"{streams} streams: {json.dumps(summary, indent=1)}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"http-stream-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    flat = {}
    for name, summary in results.items():
        for key, value in summary.items():
            if isinstance(value, dict):
                flat.update({f"{name} {key} {k}": round(v, 2) for k, v in value.items()})
            else:
                flat[f"{name} {key}"] = round(value, 3)
    append_entry("bench", "HTTP API streaming against gRPC", flat, [path])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
