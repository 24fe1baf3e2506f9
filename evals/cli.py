"""`python -m evals`: list, run, compare, report, quantize.

Each subcommand checks its arguments before doing work and exits with a one-line message
(not a traceback) when something is wrong: an unknown suite, a server that is not there,
a missing corpus, a file that is not a results file. Every subcommand takes the logging
flags (telemetry/logs.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from backend.settings import add_client_flags
from evals.errors import EvalError
from telemetry.logs import configure_from_args, logging_arguments


def _list(args: argparse.Namespace) -> int:
    from evals.suites import SUITES, get_suite

    for name in SUITES:
        suite = get_suite(name)
        if args.json:
            print(json.dumps({"name": name, "version": suite.version,
                              "default_size": suite.default_size, "live_only": suite.live_only,
                              "description": suite.description}))  # fmt: skip
            continue
        where = "server only" if suite.live_only else "server or checkpoint"
        print(
            f"{name:<11} v{suite.version}  {suite.description} "
            f"[{suite.default_size} items by default; {where}]"
        )
    return 0


SAMPLING_FIELDS = {"temperature": float, "top_k": int, "top_p": float, "seed": int,
                   "repetition_penalty": float}  # fmt: skip


def parse_sampling(text: str | None) -> dict | None:
    """`--sampling`: None (greedy), `server` (the model's defaults: {}) or `KEY=VALUE,...`."""
    if text is None:
        return None
    if text == "server":
        return {}
    sampling = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        if key not in SAMPLING_FIELDS or not value:
            raise EvalError(
                f"--sampling {part!r}: give `server` or KEY=VALUE pairs with KEY one of "
                f"{', '.join(SAMPLING_FIELDS)} (e.g. temperature=0,repetition_penalty=1.1)"
            )
        try:
            sampling[key] = SAMPLING_FIELDS[key](value)
        except ValueError:
            raise EvalError(f"--sampling {part!r}: {value!r} is not a number") from None
    return sampling


def _run(args: argparse.Namespace) -> int:
    from backend.settings import ClientSettings, load_settings
    from evals.progress_lines import JsonlProgress
    from evals.report import metrics_table
    from evals.runner import run_suite
    from evals.suites import SuiteConfig, get_suite
    from evals.targets import open_target

    get_suite(args.suite)  # an unknown suite fails before connecting to anything
    options = {}
    if args.chunk_chars is not None:
        options["chunk_chars"] = args.chunk_chars
    for key in ("collection", "questions", "public_eval"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    sampling = parse_sampling(args.sampling)
    if sampling is not None:
        options["sampling"] = sampling
    config = SuiteConfig(
        size=args.size,
        full=args.full,
        seed=args.seed,
        corpus=Path(args.corpus).expanduser().resolve(),
        max_tokens=args.max_tokens,
        options=options,
    )
    settings = load_settings(ClientSettings, args)
    target = open_target(args.target, args.model, args.concurrency, settings=settings)
    lines = JsonlProgress() if args.progress == "jsonl" else None
    try:
        outcome = run_suite(
            args.suite,
            target,
            config,
            out_root=Path(args.out) if args.out else None,
            resume=Path(args.resume) if args.resume else None,
            progress=lines,
            record=not args.no_record,
        )
    finally:
        target.close()
    if lines is not None:
        lines.finished(outcome)
        return 0
    result = outcome.result
    print(
        f"\n{result.suite} v{result.suite_version} on {result.model}: "
        f"{len(result.rows)} items, {result.errors} errors, {result.duration_s:.1f} s"
    )
    print(metrics_table(result))
    print(f"\nresults: {outcome.results_path}\nreport:  {outcome.report_path}")
    if outcome.model_copy:
        print(f"model copy: {outcome.model_copy}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from evals.compare import compare_runs, markdown_comparison
    from evals.results import load_results

    a, b = load_results(args.a), load_results(args.b)
    text = markdown_comparison(compare_runs(a, b), args.a, args.b, limit=args.limit)
    _emit(text, args.out)
    return 0


def _report(args: argparse.Namespace) -> int:
    from evals.report import markdown_report, runs_table
    from evals.results import load_results
    from evals.runner import list_runs, runs_dir

    if args.runs:
        text = "\n".join(markdown_report(load_results(r)) for r in args.runs)
    else:
        root = Path(args.root) if args.root else runs_dir()
        runs = list_runs(root)
        if not runs:
            raise EvalError(f"no runs under {root}; run one with `python -m evals run SUITE ...`")
        text = runs_table([(r.name, load_results(r)) for r in runs]) + "\n"
    _emit(text, args.out)
    return 0


def _quantize(args: argparse.Namespace) -> int:
    from evals.quantize import run

    run(args)
    return 0


def _emit(text: str, out: str | None) -> None:
    if out:
        Path(out).write_text(text)
        print(f"wrote {out}")
    else:
        print(text, end="")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    from evals.suites.base import DEFAULT_CORPUS

    parser = argparse.ArgumentParser(prog="python -m evals", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    logs = [logging_arguments()]
    listing = sub.add_parser(
        "list", help="the suites, their versions and default sizes", parents=logs
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per suite")
    listing.set_defaults(run=_list)

    run = sub.add_parser("run", help="run a suite on a server or a checkpoint folder", parents=logs)
    run.add_argument("suite", help="suite name (see `python -m evals list`)")
    run.add_argument(
        "--target",
        default="127.0.0.1:50051",
        help="HOST:PORT or unix:PATH of a server, or a checkpoint folder",
    )
    run.add_argument("--model", default="", help="model name on the server (default: its default)")
    run.add_argument("--concurrency", type=int, default=1, help="requests in flight (server)")
    run.add_argument("--size", type=int, default=None, help="items to run (default: small)")
    run.add_argument("--full", action="store_true", help="every item the suite has")
    run.add_argument("--seed", type=int, default=0, help="which items, in which order")
    run.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="corpus folder (test split)")
    run.add_argument("--max-tokens", type=int, default=None, help="answer length (generation)")
    run.add_argument("--chunk-chars", type=int, default=None, help="perplexity chunk size")
    run.add_argument(
        "--sampling",
        default=None,
        help="docs-qa decoding (default greedy): `server` for the model's defaults, or "
        "KEY=VALUE,... of temperature, top_k, top_p, seed, repetition_penalty",
    )
    run.add_argument(
        "--collection",
        default=None,
        help="retrieval: the server's collection (default: its default)",
    )
    run.add_argument(
        "--questions", default=None, help="retrieval: hand-written questions file (JSONL)"
    )
    run.add_argument(
        "--public-eval", default=None, help="guardrails: the public attack sets' folder"
    )
    run.add_argument("--out", default=None, help="folder for run folders (default runs/evals)")
    add_client_flags(run)
    run.add_argument("--resume", default=None, help="continue an interrupted run folder")
    run.add_argument(
        "--no-record", action="store_true", help="do not copy results into the model's evals/"
    )
    run.add_argument(
        "--progress",
        choices=("bar", "jsonl"),
        default="bar",
        help="bar: tqdm and a table at the end; jsonl: one JSON line per item on stdout "
        "and a last line naming the results (evals/progress_lines.py)",
    )
    run.set_defaults(run=_run)

    compare = sub.add_parser(
        "compare", help="per-metric deltas and changed items of two runs", parents=logs
    )
    compare.add_argument("a", help="run folder or results.json (before)")
    compare.add_argument("b", help="run folder or results.json (after)")
    compare.add_argument("--limit", type=int, default=20, help="changed items to list")
    compare.add_argument("--out", default=None, help="write the markdown here")
    compare.set_defaults(run=_compare)

    report = sub.add_parser(
        "report", help="markdown report of runs (default: all runs)", parents=logs
    )
    report.add_argument("runs", nargs="*", help="run folders (default: a table of every run)")
    report.add_argument("--root", default=None, help="where runs live (default runs/evals)")
    report.add_argument("--out", default=None, help="write the markdown here")
    report.set_defaults(run=_report)

    about = "quantized variants of a checkpoint, measured side by side with the original"
    quantize = sub.add_parser("quantize", help=about, description=about, parents=logs)
    if "quantize" in (sys.argv[1:] if argv is None else argv):  # it imports torch: only when run
        from evals.quantize import add_arguments

        add_arguments(quantize)
    quantize.set_defaults(run=_quantize)
    return parser


def main(argv: list[str] | None = None) -> int:
    from backend.settings import SettingsError
    from evals.runner import EvalInterrupted

    args = build_parser(argv).parse_args(argv)
    configure_from_args(args)
    try:
        return args.run(args)
    except EvalInterrupted as error:
        print(f"{error}", file=sys.stderr)
        return 130
    except (EvalError, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
