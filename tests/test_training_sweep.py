"""The scaling sweep: equal-compute points per budget, a table, a plot, and reuse on rerun."""

from __future__ import annotations

import json

import pytest

from chatforge.corpus_files import load_documents
from tests.training.helpers import FIXTURE, train_here
from training.bpe import train_tokenizer
from training.corpus import build_corpus


def test_sweep_writes_table_and_plot_and_reuses_finished_points(tmp_path, capsys):
    corpus, _ = build_corpus(str(FIXTURE), tmp_path / "corpus", val_fraction=0.25, test_fraction=0)
    texts = [d.text for d in load_documents(corpus, "train")]
    train_tokenizer(texts, vocab_size=300).save_pretrained(tmp_path / "tok")
    out = tmp_path / "sweep"
    argv = ["sweep", "--corpus", str(corpus), "--tokenizer", str(tmp_path / "tok")]
    argv += ["--out", str(out), "--depths", "1,2", "--budgets", "1e8,3e8", "--aspect", "32"]
    argv += ["--head-dim", "16", "--seq-len", "16", "--batch-size", "4", "--eval-batches", "2"]
    assert train_here(*argv) == 0
    rows = json.loads((out / "sweep.json").read_text())
    assert [(r["budget"], r["depth"]) for r in rows] == [(1e8, 1), (1e8, 2), (3e8, 1), (3e8, 2)]
    for r in rows:
        per_step = r["flops"] / r["steps"]
        assert r["budget"] - per_step < r["flops"] <= r["budget"]  # equal compute per budget
        assert r["val_loss"] > 0
    assert rows[1]["parameters"] > rows[0]["parameters"] and rows[2]["steps"] > rows[0]["steps"]
    table = (out / "sweep.md").read_text().splitlines()
    assert len(table) == 2 + 4 and "val loss" in table[0]
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    assert train_here(*argv) == 0  # every point is reused, values unchanged
    assert json.loads((out / "sweep.json").read_text()) == rows
    assert "reading" not in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # argparse's usage error
        train_here(*argv[:-8], "--depths", "x")
    assert exit_.value.code == 2
    assert "expected comma-separated integers, got 'x'" in capsys.readouterr().err
