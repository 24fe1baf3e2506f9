"""The run journal: dated entries with the command as a person would retype it."""

import os
import subprocess
import sys
from pathlib import Path

from evals.journal import append_entry

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
        "from evals.journal import current_command\nprint(current_command())\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}"}
    run = subprocess.run(
        [sys.executable, "-m", "probe.tool", "--size", "a b"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert run.stdout.strip() == "python -m probe.tool --size 'a b'"
