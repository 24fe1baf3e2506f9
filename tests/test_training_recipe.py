"""The from-scratch recipe end to end on a tiny corpus, and its registration."""

from __future__ import annotations

import json

from backend.registry import load_registry
from tests.training.helpers import FIXTURE, train_here


def test_recipe_runs_every_stage_registers_and_reuses(tmp_path, capsys):
    runs = tmp_path / "runs"
    argv = ["recipe", "--source", str(FIXTURE), "--runs", str(runs), "--vocab-size", "300"]
    argv += ["--depth", "1", "--seq-len", "64", "--batch-size", "4"]
    argv += ["--pretrain-steps", "4", "--sft-steps", "2", "--name", "tiny-scratch"]
    assert train_here(*argv) == 0
    printed = capsys.readouterr().out
    for stage in ("data", "tokenizer", "pretrain", "sft", "export"):
        assert f"=== {stage}: python -m training {stage}" in printed
    assert "unigram baseline" in printed and "recipe summary" in printed
    # runs/models.yaml is the file the committed models.yaml includes
    main = tmp_path / "models.yaml"
    main.write_text("models:\n  other:\n    checkpoint: /x\ninclude:\n  - runs/models.yaml\n")
    spec = load_registry(main).models["tiny-scratch"]
    assert spec.checkpoint == str(runs / "scratch" / "chat" / "hf")
    assert json.loads((runs / "scratch" / "chat" / "hf" / "run.json").read_text())["kind"] == "sft"
    assert train_here(*argv) == 0  # finished stages are reused
    again = capsys.readouterr().out
    for stage in ("data", "tokenizer", "pretrain", "sft"):
        assert f"=== {stage}: reusing" in again
