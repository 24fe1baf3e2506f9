"""latency: time to first token, time per output token, inter-token and end-to-end latency.

The definitions are vLLM's serving benchmark's (`vllm/benchmarks/serve.py`,
`calculate_metrics`, and the request functions that time each streamed chunk), measured
on the client, from the moment the request is sent:
- TTFT: until the first chunk with text arrives (queueing and prefill included).
- TPOT: (E2EL - TTFT) / (output tokens - 1), per request; requests of one token have none.
- ITL: the gap between two consecutive chunks, pooled over all requests (a chunk may carry
  several tokens, so ITL and TPOT differ when the server bundles tokens).
- E2EL: until the stream ends.
vLLM reports mean, median and p99 of each (its default `--metric-percentiles 99`); so do we.

Design decisions:
- Requests go out `--concurrency` at a time (the runner's thread pool), greedy, with a
  fixed `max_tokens`, over a fixed list of prompts of varied length: the suite needs no
  corpus and measures the serving path, not answer quality.
- Percentile intervals resample whole requests, since a request's gaps are not
  independent of each other.
"""

from __future__ import annotations

from evals.results import MetricSpec, Row
from evals.suites.base import Item, Suite, SuiteConfig
from evals.targets import Target

DEFAULT_MAX_TOKENS = 64
PROMPTS = [
    "What is a Python list?",
    "Explain the difference between a tuple and a list in Python.",
    "How do I read a file line by line?",
    "Write a haiku about the sea.",
    "What does the json module do?",
    "Summarise what a dictionary comprehension is, with an example.",
    "Why would I use a virtual environment?",
    "List three uses of the itertools module.",
    "What is the capital of France?",
    "Describe how exceptions propagate in Python, step by step.",
    "What is recursion?",
    "Give me a short tip for writing readable code.",
    "How do I sort a list of dictionaries by one key?",
    "What is the Global Interpreter Lock?",
    "Translate 'good morning' into French and German.",
    "When should I use a generator instead of a list?",
]
FULL_REQUESTS = 64


def _latency_metrics() -> list[MetricSpec]:
    """Mean, median and p99 of each quantity, as vLLM's benchmark prints them."""
    metrics = []
    for key, label in (("ttft", "time to first token"), ("tpot", "time per output token"),
                       ("itl", "inter-token latency"), ("e2el", "end-to-end latency")):  # fmt: skip
        field = f"{key}_ms"
        metrics += [
            MetricSpec(f"mean_{field}", "pooled_mean", field, f"mean {label} (ms)",
                       higher_is_better=False),
            MetricSpec(f"median_{field}", "percentile", field, f"median {label} (ms)",
                       q=50.0, higher_is_better=False),
            MetricSpec(f"p99_{field}", "percentile", field, f"p99 {label} (ms)",
                       q=99.0, higher_is_better=False),
        ]  # fmt: skip
    return metrics


class Latency(Suite):
    name = "latency"
    version = "1"
    description = "TTFT, TPOT, ITL and end-to-end latency (vLLM's definitions) under concurrency"
    default_size = len(PROMPTS)
    live_only = True
    metrics = [
        *_latency_metrics(),
        MetricSpec("output_tokens", "mean", "output_tokens", "mean output tokens per request"),
    ]

    def all_items(self, config: SuiteConfig) -> list[Item]:
        count = max(FULL_REQUESTS, config.size or 0)
        return [Item(f"request-{i}", {"prompt": PROMPTS[i % len(PROMPTS)]}) for i in range(count)]

    def settings(self, config: SuiteConfig) -> dict:
        return {**super().settings(config), "max_tokens": self.max_tokens(config)}

    def max_tokens(self, config: SuiteConfig) -> int:
        return config.max_tokens or DEFAULT_MAX_TOKENS

    def run_item(self, item: Item, target: Target, config: SuiteConfig) -> Row:
        done = target.chat(
            [{"role": "user", "content": item.data["prompt"]}], self.max_tokens(config)
        )
        ms = [t * 1000 for t in done.arrivals]
        ttft, e2el = (ms[0] if ms else done.ended * 1000), done.ended * 1000
        samples = {
            "ttft_ms": [ttft],
            "e2el_ms": [e2el],
            "itl_ms": [b - a for a, b in zip(ms, ms[1:], strict=False)],
        }
        if done.completion_tokens > 1:
            samples["tpot_ms"] = [(e2el - ttft) / (done.completion_tokens - 1)]
        return Row(
            id=item.id,
            input=item.data["prompt"],
            output=done.text,
            scores={"output_tokens": float(done.completion_tokens)},
            samples=samples,
            extra={"chunks": len(ms), "finish": done.finish_reason},
        )
