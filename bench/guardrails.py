"""Guard latency per request on CPU: input screening plus the streamed output filter.

A request is a system prompt and a user message drawn from a realistic mix (the benign
Python questions of the false-positive eval, the project's generated attacks, and
messages carrying PII); its reply is a 600-character answer with an email address in it,
fed to the output guard in 4-character deltas as a stream would. Per request we time
`screen_input` (it delays the first token), the output filter on each delta (it delays
that delta) and their sum over the request, and report p50/p95 for the full guard (rules
and classifier) against the rules alone, measured in the same run and alternating, so
load drift hits both alike. Another row times the input stage on the long public
jailbreak prompts (../shared/data/public-eval/, when present) as a worst case. Target:
total p95 <= 5 ms for the realistic mix. The machine's load average is printed and
saved: other work on the CPUs inflates wall-clock numbers (a thread that is descheduled
for a time slice adds it to whatever it was timing), so the total is also reported in
the thread's CPU time. Writes JSON under runs/bench/ and a
daily-log entry.

    python bench/guardrails.py [--requests 400] [--policy guardrails.yaml]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backend.guardrails import Guard, PolicyError, load_policy  # noqa: E402
from backend.guardrails.policy import DEFAULT_POLICY  # noqa: E402
from bench import percentiles  # noqa: E402
from chatforge.journal import append_entry  # noqa: E402
from evals.suites.guardrails import PUBLIC_EVAL, python_questions  # noqa: E402
from training.guard_data import ATTACK, build_examples  # noqa: E402

TARGET_P95_MS = 5.0
SYSTEM = "You are a helpful assistant for the Python documentation. Cite your sources."
REPLY = (
    "The with statement wraps a block in the methods of a context manager, so set-up and "
    "clean-up code live in one place. The manager's __enter__ runs first and its result is "
    "bound to the target after `as`; __exit__ runs however the block ends, even on an "
    "exception, which it may suppress by returning True. Files, locks and database "
    "connections are the usual examples. For questions write to docs-team@example.org "
    "and include the Python version you use. contextlib.contextmanager turns a generator "
    "into a context manager, and ExitStack combines any number of them dynamically."
)


def requests(n: int, seed: int = 0) -> list[list[dict[str, str]]]:
    rng = random.Random(seed)
    questions = python_questions()
    attacks = [e.text for e in build_examples(seed) if e.label == ATTACK]
    pii = [f"{q} My email is jane.doe@example.com, call +1 415 555 0100." for q in questions]
    pool = questions * 3 + attacks + pii  # mostly ordinary questions
    return [
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": rng.choice(pool)}]
        for _ in range(n)
    ]


@dataclass
class Timing:
    input_ms: float  # screening before the first token can be generated
    delta_ms: list[float]  # the output filter on each streamed delta
    total_ms: float  # everything the guard did for the request
    cpu_ms: float  # the same in this thread's CPU time: immune to being descheduled


def time_request(guard: Guard, messages: list[dict[str, str]]) -> Timing:
    clock = time.perf_counter
    cpu_start = time.thread_time()
    start = clock()
    screen = guard.screen_input(messages)
    input_ms = (clock() - start) * 1000
    deltas = []
    if not screen.blocked:
        output = guard.output_guard(screen.messages)
        for i in range(0, len(REPLY), 4):
            start = clock()
            output.feed(REPLY[i : i + 4])
            deltas.append((clock() - start) * 1000)
        start = clock()
        output.finish()
        deltas.append((clock() - start) * 1000)
    cpu_ms = (time.thread_time() - cpu_start) * 1000
    return Timing(input_ms, deltas, input_ms + sum(deltas), cpu_ms)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--policy", default=str(DEFAULT_POLICY))
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench")
    args = parser.parse_args()
    try:
        policy = load_policy(args.policy)
    except PolicyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    full = Guard.from_policy(policy)
    if full.classifier is None:
        print(
            "error: the policy's classifier artifact is missing; run `make guard-classifier`",
            file=sys.stderr,
        )
        return 2
    rules = Guard(policy, None)
    batch = requests(args.requests)
    for messages in batch[:20]:  # warm-up: imports, regex caches, first sklearn call
        time_request(full, messages)
    timed: dict[str, list[Timing]] = {"full": [], "rules": []}
    for messages in batch:  # alternating, so load drift hits both alike
        timed["full"].append(time_request(full, messages))
        timed["rules"].append(time_request(rules, messages))
    wild = PUBLIC_EVAL / "jailbreaks_inthewild.json"
    if wild.exists():
        prompts = json.loads(wild.read_text())[:200]
        timed["long"] = [time_request(full, [{"role": "user", "content": p}]) for p in prompts]
    result = {
        name: {
            "input": percentiles([t.input_ms for t in rows]),
            "per_delta": percentiles([d for t in rows for d in t.delta_ms]),
            "total": percentiles([t.total_ms for t in rows]),
            "total_cpu": percentiles([t.cpu_ms for t in rows]),
        }
        for name, rows in timed.items()
        if name != "long"
    }
    if "long" in timed:
        result["long_jailbreaks"] = {"input": percentiles([t.input_ms for t in timed["long"]])}
    load = os.getloadavg()[0]
    labels = {"full": "rules + classifier", "rules": "rules only", "long_jailbreaks": "long"}
    print(f"ms per request (load average {load:.1f} on {os.cpu_count()} CPUs)")
    print(f"{'guard':<20}{'stage':<11}{'p50':>8}{'p95':>8}")
    for name, stages in result.items():
        for stage, row in stages.items():
            print(f"{labels[name]:<20}{stage:<11}{row['p50_ms']:>8.3f}{row['p95_ms']:>8.3f}")
    ratio = result["full"]["total"]["p95_ms"] / result["rules"]["total"]["p95_ms"]
    print(f"classifier cost: full / rules-only total p95 = {ratio:.2f}x")
    p95 = result["full"]["total"]["p95_ms"]
    cpu_p95 = result["full"]["total_cpu"]["p95_ms"]
    for label, value in (("wall-clock", p95), ("CPU-time", cpu_p95)):
        verdict = "meets" if value <= TARGET_P95_MS else "misses"
        print(f"{label} total p95 {value:.2f} ms {verdict} the {TARGET_P95_MS} ms target")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"guardrails-{time.strftime('%Y%m%d-%H%M%S')}.json"
    payload = {
        "classifier": full.classifier.kind,
        "load_average": round(load, 2),
        "ratio_total_p95": round(ratio, 3),
        **result,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"results: {path}")
    numbers = {
        "input_p95_ms": result["full"]["input"]["p95_ms"],
        "per_delta_p95_ms": result["full"]["per_delta"]["p95_ms"],
        "total_p50_ms": result["full"]["total"]["p50_ms"],
        "total_p95_ms": p95,
        "total_cpu_p95_ms": cpu_p95,
        "load_average": round(load, 2),
    }
    append_entry("bench", "guard latency per request (CPU)", numbers, [path])
    return 0


if __name__ == "__main__":
    sys.exit(main())
