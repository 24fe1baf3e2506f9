"""The run journal: dated entries with the command as a person would retype it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatforge import journal
from chatforge.journal import append_entry, refusal, shown_path

REPO = Path(__file__).resolve().parent.parent


def test_entries_append_to_one_file_per_day(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATFORGE_DAILY_LOG", str(tmp_path))
    first = append_entry("bench", "one", {"tok/s": 12.34567, "runs": 5}, ["runs/x.json"], "cmd 1")
    second = append_entry("eval", "two", {}, command="cmd 2", notes="a note")
    assert first == second and first.parent == tmp_path
    text = first.read_text()
    assert text.startswith(f"# {first.stem}\n")
    assert (
        "· bench: one\n- command: `cmd 1`\n- tok/s: 12.35; runs: 5\n- artifact: `runs/x.json`"
        in (text)
    )
    assert "· eval: two\n- command: `cmd 2`\n- a note" in text


def test_command_of_a_module_run(tmp_path):
    package = tmp_path / "probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tool.py").write_text(
        "from chatforge.journal import current_command\nprint(current_command())\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}"}
    env["CHATFORGE_HOME"] = str(tmp_path / "home")
    model = tmp_path / "home" / "models" / "m"
    run = subprocess.run(
        [sys.executable, "-m", "probe.tool", "--size", "a b", "--target", str(model),
         str(REPO / "runs" / "x")],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert run.stdout.strip() == (
        "python -m probe.tool --size 'a b' --target $CHATFORGE_HOME/models/m runs/x"
    )


def test_shown_paths_are_relative_to_the_repository_or_chatforge_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATFORGE_HOME", str(tmp_path / "home"))
    assert shown_path(REPO / "runs" / "x.json") == "runs/x.json"
    assert shown_path(tmp_path / "home" / "models" / "m") == "$CHATFORGE_HOME/models/m"
    assert shown_path(tmp_path / "elsewhere") == str(tmp_path / "elsewhere")


@pytest.mark.parametrize(
    ("command", "artifacts", "reason"),
    [
        ("python -m evals run smoke", ["runs/evals/x"], None),
        ("python bench/stream.py --streams 4", [], None),
        ("make load", [], None),
        ("python -c 'import evals'", [], "is not one of the documented commands"),
        ("python -m pytest tests", [], "is not one of the documented commands"),
        ("python /tmp/try.py", [], "is not one of the documented commands"),
        ("python -m training data", ["/tmp/corpus"], "outside the repository and $CHATFORGE_HOME"),
    ],
)
def test_only_documented_runs_with_kept_artifacts_are_journalled(command, artifacts, reason):
    found = refusal(command, artifacts)
    assert found is None if reason is None else reason in found


def test_the_project_journal_refuses_a_throw_away_run(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CHATFORGE_DAILY_LOG")
    monkeypatch.setattr(journal, "PROJECT_JOURNAL", tmp_path / "daily-log")
    assert append_entry("eval", "scratch", {"f1": 0.5}, command="python -c 'run()'") is None
    assert "not journalled in daily-log/" in capsys.readouterr().err
    assert not (tmp_path / "daily-log").exists()
    kept = append_entry("eval", "smoke", {"f1": 0.5}, ["runs/x"], command="python -m evals run")
    assert kept is not None and kept.parent == tmp_path / "daily-log"


def test_note_and_open_question_are_written_to_todays_page(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CHATFORGE_DAILY_LOG", str(tmp_path))
    assert journal.main(["note", "DPO", "margins", "grow fast"]) == 0
    assert journal.main(["note", "--question", "Does beta 0.1 over-fit citations?"]) == 0
    assert journal.main(["note", "  "]) == 2
    assert "the note is empty" in capsys.readouterr().err
    (page,) = tmp_path.glob("*.md")
    text = page.read_text()
    assert text.startswith("# ")
    assert "· note\nDPO margins grow fast\n" in text
    assert "· open question\nDoes beta 0.1 over-fit citations?\n" in text
