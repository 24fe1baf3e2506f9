"""The runner: one suite against one target, with progress, resuming, and every output.

Outputs of a run: `runs/evals/<timestamp>-<suite>-<model>/results.json` (per-item rows,
aggregates with bootstrap intervals, metadata), `report.md` beside it, a copy in the
model's own `evals/` folder (see `evals.targets` for how that reaches a live server's
model), and a `daily-log/` entry.

Design decisions:
- Items run `target.concurrency` at a time on a thread pool; the server (or the one model
  in this process) is the bottleneck, so threads are enough and keep the client simple.
- Every finished row is appended to `rows.jsonl` in the run folder as it completes, next to
  `run.json` (suite, version, model, settings). `--resume RUN_DIR` checks those match,
  skips the rows already there and runs the rest: an interrupted long run loses at most the
  items in flight. Ctrl-C cancels what has not started and says how to resume.
- An RPC that fails for one item becomes an error row (kept, shown, left out of
  aggregates); a server that is gone fails fast instead, after `MAX_ERRORS` errors in a row.
- Progress goes to tqdm on the terminal and to an optional callback, called once with no
  row when the items are known, then with each finished row (`--progress jsonl`, which
  the server's RunEval relays to its client).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import grpc
from tqdm import tqdm

from chatforge.journal import append_entry, git_revision
from chatforge.paths import REPO_ROOT
from evals.errors import EvalError
from evals.report import markdown_report
from evals.results import Row, RunResult, dumps, save_results
from evals.suites import Suite, SuiteConfig, get_suite
from evals.targets import CheckpointTarget, Target, rpc_message

ROWS_FILE = "rows.jsonl"
RUN_FILE = "run.json"
REPORT_FILE = "report.md"
MAX_ERRORS = 5

# (items done, items in the run, the row just finished; None for the call before any item)
Progress = Callable[[int, int, Row | None], None]


def runs_dir() -> Path:
    """Where run folders go: `$CHATFORGE_EVAL_RUNS` (the tests set it), else runs/evals."""
    return Path(os.environ.get("CHATFORGE_EVAL_RUNS", REPO_ROOT / "runs" / "evals"))


class EvalInterrupted(EvalError):
    """Ctrl-C during a run: what finished is kept in the run folder."""


@dataclass
class RunOutcome:
    result: RunResult
    run_dir: Path
    results_path: Path
    report_path: Path
    model_copy: str | None  # where the model's evals/ copy went, if anywhere


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"


def _identity(suite: Suite, target: Target, config: SuiteConfig) -> dict:
    return {
        "suite": suite.name,
        "suite_version": suite.version,
        "model": target.model,
        "settings": suite.settings(config),
    }


def open_run_folder(
    out_root: Path, label: str, identity: dict, resume: Path | None, run_file: str = RUN_FILE
) -> tuple[Path, dict]:
    """A new `<timestamp>-<label>` folder holding `identity` and the start time in
    `run_file`, or the `resume` folder once its recorded identity matches this run's."""
    if resume is None:
        started = dt.datetime.now(dt.UTC)
        name = f"{started:%Y%m%d-%H%M%S}-{label}"
        run_dir, n = out_root / name, 1
        while run_dir.exists():  # two runs in the same second
            n += 1
            run_dir = out_root / f"{name}-{n}"
        run_dir.mkdir(parents=True)
        meta = {**identity, "started_at": started.isoformat(timespec="seconds")}
        (run_dir / run_file).write_text(json.dumps(meta, indent=1))
        return run_dir, meta
    if not (resume / run_file).is_file():
        raise EvalError(f"--resume {resume}: no {run_file} there; give a run folder to resume")
    meta = json.loads((resume / run_file).read_text())
    for key, value in identity.items():
        if meta.get(key) != value:
            raise EvalError(
                f"--resume {resume}: the run was {key}={meta.get(key)!r}, this one is "
                f"{value!r}; resume with the same command and settings"
            )
    return resume, meta


def _prepare_run_dir(
    suite: Suite, target: Target, config: SuiteConfig, out_root: Path, resume: Path | None
) -> tuple[Path, dict, dict[str, Row]]:
    identity = _identity(suite, target, config)
    label = f"{suite.name}-{_slug(target.model)}"
    run_dir, meta = open_run_folder(out_root, label, identity, resume)
    if resume is None:
        return run_dir, meta, {}
    done = {}
    rows_file = resume / ROWS_FILE
    if rows_file.is_file():
        for line in rows_file.read_text().splitlines():
            try:
                row = Row.from_json(json.loads(line))
            except (ValueError, TypeError):
                continue  # a line cut short by the interruption
            if not row.error:  # errored items run again
                done[row.id] = row
    return resume, meta, done


def _run_items(suite, target, config, items, done, rows_file: Path, progress) -> dict[str, Row]:
    rows = dict(done)
    todo = [item for item in items if item.id not in rows]
    bar = tqdm(total=len(items), initial=len(items) - len(todo), desc=suite.name, unit="item")
    if progress is not None:
        progress(len(rows), len(items), None)

    def one(item) -> Row:
        try:
            return suite.run_item(item, target, config)
        except grpc.RpcError as error:
            return Row(id=item.id, error=rpc_message(error))

    errors_in_a_row = 0
    pool = ThreadPoolExecutor(max_workers=target.concurrency, thread_name_prefix="eval")
    try:
        pending = set()
        queue = iter(todo)
        for item in queue:
            pending.add(pool.submit(one, item))
            if len(pending) >= target.concurrency:
                break
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                row = future.result()
                with rows_file.open("a") as f:  # only this thread writes rows
                    f.write(json.dumps(row.__dict__, ensure_ascii=False) + "\n")
                rows[row.id] = row
                errors_in_a_row = errors_in_a_row + 1 if row.error else 0
                bar.update(1)
                if progress is not None:
                    progress(len(rows), len(items), row)
                if errors_in_a_row >= MAX_ERRORS:
                    raise EvalError(
                        f"{MAX_ERRORS} items failed in a row (last: {row.error}); stopping. "
                        f"Fix the target and resume with --resume {rows_file.parent}"
                    )
                nxt = next(queue, None)
                if nxt is not None:
                    pending.add(pool.submit(one, nxt))
    except KeyboardInterrupt:
        raise EvalInterrupted(
            f"interrupted after {len(rows)} of {len(items)} items; the rows are kept in "
            f"{rows_file.parent}; continue with --resume {rows_file.parent}"
        ) from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        bar.close()
    return rows


def run_suite(
    suite_name: str,
    target: Target,
    config: SuiteConfig | None = None,
    out_root: Path | None = None,
    resume: Path | None = None,
    progress: Progress | None = None,
    record: bool = True,
    command: str | None = None,
) -> RunOutcome:
    """Run a suite on a target and write every output; see the module docstring."""
    config = config or SuiteConfig()
    suite = get_suite(suite_name)
    suite.check_target(target, config)
    items = suite.items(config)
    if not items:
        raise EvalError(f"suite `{suite.name}` has no items for these settings")
    run_dir, meta, done = _prepare_run_dir(
        suite, target, config, Path(out_root or runs_dir()), resume
    )
    started = dt.datetime.fromisoformat(meta["started_at"])
    rows = _run_items(suite, target, config, items, done, run_dir / ROWS_FILE, progress)
    finished = dt.datetime.now(dt.UTC)
    result = RunResult(
        suite=suite.name,
        suite_version=suite.version,
        model=target.model,
        target=target.describe(),
        settings={**meta["settings"], "concurrency": target.concurrency},
        metrics=suite.metrics,
        rows=[rows[item.id] for item in items],
        git_revision=git_revision(),
        started_at=meta["started_at"],
        finished_at=finished.isoformat(timespec="seconds"),
        duration_s=round((finished - started).total_seconds(), 3),
    )
    result.compute_aggregates()
    results_path = save_results(result, run_dir)
    report_path = run_dir / REPORT_FILE
    report_path.write_text(markdown_report(result))
    model_copy = None
    if record:
        try:
            model_copy = target.record(f"{run_dir.name}.json", dumps(result))
        except EvalError as error:  # the run itself is complete and saved: say so, go on
            tqdm.write(f"warning: {error}; the results stay in {run_dir}", file=sys.stderr)
    artifacts = [results_path, report_path, *([model_copy] if model_copy else [])]
    append_entry(
        "eval",
        f"{suite.name} on {target.model}",
        {**result.headline(), "items": len(result.rows), "errors": result.errors},
        artifacts=artifacts,
        command=command,
    )
    return RunOutcome(result, run_dir, results_path, report_path, model_copy)


def run_on_checkpoint(
    folder: Path | str, suite: str = "docs-qa", config: SuiteConfig | None = None, **kwargs
) -> RunOutcome:
    """Run a suite on a checkpoint folder from Python (training and fine-tuning use this):
    `run_on_checkpoint("runs/finetune/lora", "docs-qa", SuiteConfig(size=50))`."""
    target = CheckpointTarget(folder)
    try:
        return run_suite(suite, target, config, **kwargs)
    finally:
        target.close()


def list_runs(root: Path | None = None) -> list[Path]:
    """Finished run folders, newest first."""
    root = root or runs_dir()
    if not root.is_dir():
        return []
    return sorted((p.parent for p in root.glob("*/results.json")), reverse=True)
