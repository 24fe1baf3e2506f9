"""Load test: many concurrent chat streams against a server, with locust.

    python bench/load.py [--target HOST:PORT | --config models.yaml] [--users 8]
                         [--spawn-rate 2] [--duration 60s] [--max-tokens 64]

Without --target it starts a server (bench/ and tests share `BackendProcess`). Locust runs
headless as a child process with bench/locustfile.py; its final JSON statistics are turned
into a summary (requests, failures, requests/s, TTFT and stream latency percentiles,
completion tokens/s across all users, and what 1,000 generated tokens cost at that rate:
deploy/prices.yaml, bench/cost.py), printed, written to runs/bench/ and journalled.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backend.launcher import BackendProcess  # noqa: E402
from backend.registry import DEFAULT_CONFIG  # noqa: E402
from bench.cost import (  # noqa: E402
    add_cost_flags,
    describe_serving,
    detect_hardware,
    load_prices,
    serving_cost,
)
from chatforge.journal import append_entry  # noqa: E402


def percentile(histogram: dict[str, int], q: float) -> float:
    """Percentile from locust's {response time ms: count} histogram."""
    points = sorted((float(ms), n) for ms, n in histogram.items())
    total = sum(n for _, n in points)
    if total == 0:
        return 0.0
    seen = 0
    for ms, n in points:
        seen += n
        if seen >= q * total:
            return ms
    return points[-1][0]


def summarize(stats: list[dict]) -> dict[str, float]:
    by_name = {s["name"]: s for s in stats}
    # The measured window: first request started to last one finished (not locust's start-up).
    seconds = max((s["last_request_timestamp"] or 0 for s in stats), default=0) - min(
        (s["start_time"] for s in stats), default=0
    )
    chat = by_name.get("Chat", {})
    ttft = by_name.get("Chat TTFT", {})
    requests = chat.get("num_requests", 0)
    return {
        "seconds": seconds,
        "requests": requests,
        "failures": chat.get("num_failures", 0),
        "requests_per_s": requests / seconds if seconds else 0.0,
        "ttft_p50_ms": percentile(ttft.get("response_times", {}), 0.5),
        "ttft_p95_ms": percentile(ttft.get("response_times", {}), 0.95),
        "stream_p50_ms": percentile(chat.get("response_times", {}), 0.5),
        "stream_p95_ms": percentile(chat.get("response_times", {}), 0.95),
        "completion_tokens_per_s": chat.get("total_content_length", 0) / seconds
        if seconds
        else 0.0,
    }


def run_locust(target: str, args: argparse.Namespace, out_json: Path) -> None:
    env = {
        **os.environ,
        "CHATFORGE_LOAD_MAX_TOKENS": str(args.max_tokens),
        "CHATFORGE_LOAD_MODEL": args.model,
        "PYTHONPATH": str(REPO),
    }
    command = [
        sys.executable, "-m", "locust", "-f", str(REPO / "bench" / "locustfile.py"),
        "--headless", "--only-summary", "-u", str(args.users), "-r", str(args.spawn_rate),
        "-t", args.duration, "--host", target, "--json-file", str(out_json.with_suffix("")),
        "--loglevel", "WARNING",
    ]  # fmt: skip
    subprocess.run(command, env=env, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", help="a running server (default: start one)")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--model", default="")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--spawn-rate", type=float, default=2.0)
    parser.add_argument("--duration", default="60s", help="locust run time, e.g. 30s, 2m")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--out", default=str(REPO / "runs" / "bench"))
    add_cost_flags(parser)
    args = parser.parse_args()
    prices = load_prices(args.prices)
    if args.users < 1 or args.spawn_rate <= 0 or args.max_tokens < 1:
        parser.error("--users and --max-tokens must be >= 1 and --spawn-rate > 0")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "locust.json"
        if args.target:
            run_locust(args.target, args, raw)
        else:
            with BackendProcess(args.config, log_path=out / f"load-{stamp}-server.log") as srv:
                run_locust(srv.target, args, raw)
        if not raw.exists():
            sys.exit("locust wrote no statistics; see its output above")
        stats = json.loads(raw.read_text())
    summary = summarize(stats)
    # A remote --target's hardware is unknown here: the operator names it with --hardware.
    hardware = args.hardware or ("gpu_vm" if args.target else detect_hardware())
    cost = serving_cost(prices, hardware, summary["completion_tokens_per_s"], args.max_tokens)
    summary["usd_per_1k_tokens"] = cost["usd_per_1k_tokens_backend"]
    summary["usd_per_1k_tokens_ui"] = cost["usd_per_1k_tokens_ui"]
    result = {"settings": vars(args), "summary": summary, "stats": stats}
    path = out / f"load-{stamp}.json"
    path.write_text(json.dumps(result, indent=2))
    print(
        f"{summary['requests']} streams, {summary['failures']} failed, "
        f"{summary['requests_per_s']:.2f} streams/s, "
        f"TTFT p50 {summary['ttft_p50_ms']:.0f} ms p95 {summary['ttft_p95_ms']:.0f} ms, "
        f"stream p50 {summary['stream_p50_ms']:.0f} ms p95 {summary['stream_p95_ms']:.0f} ms, "
        f"{summary['completion_tokens_per_s']:.1f} completion tokens/s\n"
        f"{describe_serving(cost)}\nwritten {path}"
    )
    append_entry(
        "load",
        f"locust, {args.users} users, {args.duration}",
        summary,
        artifacts=[path],
    )


if __name__ == "__main__":
    main()
