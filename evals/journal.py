"""The run journal: every training, eval, benchmark and load-test run appends a dated entry.

Design decisions:
- One Markdown file per UTC day in `daily-log/` (`YYYY-MM-DD.md`), appended to and never
  rewritten, so the journal reads as a lab notebook and diffs cleanly in git.
- An entry is: time, what ran, the exact command, the headline numbers and the artifact
  paths. Callers pass numbers as a dict so every entry has the same shape.
- `CHATFORGE_DAILY_LOG` points the journal elsewhere; the test suite sets it so test runs
  never write into the project's journal.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def journal_dir() -> Path:
    return Path(os.environ.get("CHATFORGE_DAILY_LOG", REPO_ROOT / "daily-log"))


def git_revision() -> str:
    """The checked-out commit, with `+dirty` when tracked files have uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def shown_path(path: Path | str) -> str:
    """A path as the journal shows it: relative to the repository when inside it."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(path)


def current_command() -> str:
    """The command line that started this process, as a person would retype it."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None:  # started with `python -m package.module`
        args = ["python", "-m", spec.name.removesuffix(".__main__"), *sys.argv[1:]]
    else:
        script = sys.argv[0]
        args = ["python", shown_path(script), *sys.argv[1:]]
    return shlex.join(args)


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def append_entry(
    kind: str,
    title: str,
    numbers: Mapping[str, object],
    artifacts: Iterable[Path | str] = (),
    command: str | None = None,
    notes: str = "",
) -> Path:
    """Append one entry to today's journal file and return the file's path."""
    now = dt.datetime.now(dt.UTC)
    folder = journal_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{now:%Y-%m-%d}.md"
    lines = [] if path.exists() else [f"# {now:%Y-%m-%d}\n"]
    lines.append(f"## {now:%H:%M} UTC · {kind}: {title}")
    lines.append(f"- command: `{command or current_command()}`")
    if numbers:
        lines.append("- " + "; ".join(f"{k}: {_format(v)}" for k, v in numbers.items()))
    for artifact in artifacts:
        lines.append(f"- artifact: `{shown_path(artifact)}`")
    if notes:
        lines.append(f"- {notes}")
    with path.open("a") as f:
        f.write("\n".join(lines) + "\n\n")
    return path
