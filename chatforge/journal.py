"""The run journal: every training, eval, benchmark and load-test run appends a dated entry.

Design decisions:
- One Markdown file per UTC day in `daily-log/` (`YYYY-MM-DD.md`), appended to and never
  rewritten, so the journal reads as a lab notebook and diffs cleanly in git.
- An entry is: time, what ran, the exact command, the headline numbers and the artifact
  paths. Callers pass numbers as a dict so every entry has the same shape.
- The project's journal records only runs a person can repeat: a documented command
  (`python -m training|evals|backend ...`, `python bench/...` or `python deploy/...`) whose
  artifacts lie in the repository or `$CHATFORGE_HOME`, shown relative to them. A throw-away
  run (`python -c`, a test, a temporary folder) is told why it was not journalled, on
  stderr, instead of leaving an entry nobody can follow.
- `CHATFORGE_DAILY_LOG` points the journal elsewhere and then takes every entry: the test
  suite sets it, so test runs never write into the project's journal yet can read theirs.
- `python -m chatforge.journal note TEXT` adds the learner's own words to today's page: a
  free-form note, or with `--question` the day's open question. A note is not a run, so
  it has no command or artifacts and the documented-command check does not apply.
- This module imports only the standard library: every package may import it (the
  architecture's note), including the server's command line and the UI image.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from chatforge.paths import REPO_ROOT, chatforge_home

PROJECT_JOURNAL = REPO_ROOT / "daily-log"
# The entry points the README documents; anything else is a throw-away run.
DOCUMENTED_MODULES = ("training", "evals", "backend")
DOCUMENTED_SCRIPTS = ("bench/", "deploy/")


def journal_dir() -> Path:
    return Path(os.environ.get("CHATFORGE_DAILY_LOG", PROJECT_JOURNAL))


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
    """A path as the journal shows it: relative to the repository or `$CHATFORGE_HOME`."""
    resolved = Path(path).expanduser().resolve()
    if resolved.is_relative_to(REPO_ROOT):
        return str(resolved.relative_to(REPO_ROOT))
    home = chatforge_home().resolve()
    if resolved.is_relative_to(home):
        return str(Path("$CHATFORGE_HOME") / resolved.relative_to(home))
    return str(path)


def current_command() -> str:
    """The command line that started this process, as a person would retype it: paths
    into the repository or $CHATFORGE_HOME relative to them, as on any machine."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    given = [shown_path(a) if Path(a).is_absolute() else a for a in sys.argv[1:]]
    if spec is not None:  # started with `python -m package.module`
        args = ["python", "-m", spec.name.removesuffix(".__main__"), *given]
    else:
        script = sys.argv[0]
        args = ["python", shown_path(script) if script else "-c", *given]
    return " ".join(_shell_word(a) for a in args)


def _shell_word(arg: str) -> str:
    """`arg` quoted for a POSIX shell, leaving `$CHATFORGE_HOME` outside the quotes so
    that the shell expands it."""
    home = "$CHATFORGE_HOME/"
    if arg.startswith(home):
        return home + shlex.quote(arg.removeprefix(home))
    return shlex.quote(arg)


def refusal(command: str, artifacts: Iterable[Path | str]) -> str | None:
    """Why the project's journal does not take this run, or None when it does."""
    words = shlex.split(command)[:3]
    if words[:1] == ["make"]:
        documented = True
    elif words[:2] == ["python", "-m"] and len(words) == 3:
        documented = words[2].split(".")[0] in DOCUMENTED_MODULES
    else:
        documented = len(words) >= 2 and words[1].startswith(DOCUMENTED_SCRIPTS)
    if not documented:
        return f"`{command}` is not one of the documented commands"
    outside = [str(a) for a in artifacts if Path(shown_path(a)).is_absolute()]
    if outside:
        return f"its artifacts lie outside the repository and $CHATFORGE_HOME ({outside[0]})"
    return None


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _today_file(folder: Path) -> tuple[Path, list[str], dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{now:%Y-%m-%d}.md"
    return path, [] if path.exists() else [f"# {now:%Y-%m-%d}\n"], now


def append_note(text: str, question: bool = False) -> Path:
    """Append a learner's note (or, with `question`, the day's open question)."""
    text = " ".join(text.split())
    if not text:
        raise ValueError("the note is empty; give the text to write")
    path, lines, now = _today_file(journal_dir())
    label = "open question" if question else "note"
    lines.append(f"## {now:%H:%M} UTC · {label}\n{text}")
    with path.open("a") as f:
        f.write("\n".join(lines) + "\n\n")
    return path


def append_entry(
    kind: str,
    title: str,
    numbers: Mapping[str, object],
    artifacts: Iterable[Path | str] = (),
    command: str | None = None,
    notes: str = "",
) -> Path | None:
    """Append one entry to today's journal file; its path, or None when not journalled."""
    artifacts, command = list(artifacts), command or current_command()
    folder = journal_dir()
    if folder == PROJECT_JOURNAL:
        reason = refusal(command, artifacts)
        if reason:
            print(f"not journalled in daily-log/: {reason}", file=sys.stderr)
            return None
    path, lines, now = _today_file(folder)
    lines.append(f"## {now:%H:%M} UTC · {kind}: {title}")
    lines.append(f"- command: `{command}`")
    if numbers:
        lines.append("- " + "; ".join(f"{k}: {_format(v)}" for k, v in numbers.items()))
    for artifact in artifacts:
        lines.append(f"- artifact: `{shown_path(artifact)}`")
    if notes:
        lines.append(f"- {notes}")
    with path.open("a") as f:
        f.write("\n".join(lines) + "\n\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chatforge.journal")
    sub = parser.add_subparsers(dest="command", required=True)
    note = sub.add_parser("note", help="add a note or the day's open question to daily-log/")
    note.add_argument("text", nargs="+", help="what to write")
    note.add_argument("--question", action="store_true", help="it is the day's open question")
    args = parser.parse_args(argv)
    try:
        path = append_note(" ".join(args.text), question=args.question)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"written to {shown_path(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
