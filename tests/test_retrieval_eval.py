"""The retrieval eval (evals/retrieval_eval.py) on the fixture collection: metrics, the
table and JSON it writes, and clear errors for bad question files."""

from __future__ import annotations

import json

import pytest

from evals import retrieval_eval
from evals.retrieval_eval import EvalDataError, first_relevant_rank, load_items, summarize

QUESTIONS = [
    {"id": "q1", "question": "What does frobnicate count?", "paths": ["widgets.rst"]},
    {"id": "q2", "question": "How do I sort in descending order?", "paths": ["guide/sorting.html"]},
    {"id": "q3", "question": "At what temperature is green tea brewed?", "paths": ["tea.txt"]},
]


def test_ranks_and_summary():
    assert first_relevant_rank(["a", "b", "c"], ("c", "x")) == 3
    assert first_relevant_rank(["a"], ("z",)) is None
    metrics = summarize([1, 3, None, 7])
    assert metrics["recall@1"] == 0.25 and metrics["recall@5"] == 0.5
    assert metrics["recall@10"] == 0.75
    assert metrics["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 7) / 4)


def test_hand_written_set_is_large_and_well_formed():
    items = load_items()
    assert len(items) >= 30
    assert all(item.paths and item.question.endswith("?") for item in items)
    assert len({item.id for item in items}) == len(items)


def test_cli_prints_table_writes_json_and_journal(docs_index, tmp_path, capsys):
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    out = tmp_path / "out"
    code = retrieval_eval.main(
        ["--index-dir", str(docs_index[1]), "--questions", str(questions), "--split", "all",
         "--generated", "20", "--out", str(out)]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "hand-written (3 questions)" in printed and "generated (all split)" in printed
    [path] = out.glob("retrieval-*.json")
    result = json.loads(path.read_text())
    hand = result["results"]["hand-written"]
    assert set(hand) == {"bm25", "dense", "hybrid"}
    assert hand["hybrid"]["recall@5"] == 1.0 and hand["dense"]["mrr"] > 0.5
    generated = result["results"]["generated (all split)"]["hybrid"]
    assert 0 < generated["n"] <= 20 and 0.0 <= generated["mrr"] <= 1.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "x", "question": "Why?"}', "questions.jsonl:1: expected"),
        ('{"id": "x", "question": "Why?", "paths": ["nope.html"]}', "no page nope.html"),
    ],
)
def test_bad_questions_are_named(docs_index, tmp_path, capsys, line, message):
    questions = tmp_path / "questions.jsonl"
    questions.write_text(line + "\n")
    argv = ["--index-dir", str(docs_index[1]), "--questions", str(questions), "--generated", "0"]
    assert retrieval_eval.main(argv) == 2
    assert message in capsys.readouterr().err
    with pytest.raises(EvalDataError):
        retrieval_eval.run(docs_index[1], questions, generated=0)
