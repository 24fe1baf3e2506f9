"""The retrieval suite (evals/suites/retrieval.py) against a real server serving the
fixture collection: ranks, aggregates that recompute from the rows, the settings that tie
a run to its index, and clear errors for bad questions and collections."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import pytest

from backend.retrieval.index import open_index
from evals.cli import main as evals_main
from evals.runner import run_suite
from evals.suites import SuiteConfig
from evals.suites.retrieval import first_relevant_rank, load_items
from evals.targets import LiveTarget

QUESTIONS = [
    {"id": "q1", "question": "What does frobnicate count?", "paths": ["widgets.rst"]},
    {"id": "q2", "question": "How do I sort in descending order?", "paths": ["guide/sorting.html"]},
    {"id": "q3", "question": "At what temperature is green tea brewed?", "paths": ["tea.txt"]},
]


def test_first_relevant_rank():
    assert first_relevant_rank(["a", "b", "c"], ("c", "x")) == 3
    assert first_relevant_rank(["a"], ("z",)) is None


def test_hand_written_set_is_large_and_well_formed():
    items = load_items()
    assert len(items) >= 30
    assert all(item.paths and item.question.endswith("?") for item in items)
    assert len({item.id for item in items}) == len(items)


def write_questions(folder: Path, rows: list[dict]) -> Path:
    path = folder / "questions.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in rows))
    return path


def test_suite_through_the_server(rag_server, docs_index, tmp_path):
    index_dir = docs_index[1]
    corpus = index_dir / "corpus"  # what the ingest's corpus pipeline wrote
    config = SuiteConfig(
        full=True, corpus=corpus, options={"questions": str(write_questions(tmp_path, QUESTIONS))}
    )
    target = LiveTarget(rag_server.target, concurrency=2)
    try:
        outcome = run_suite("retrieval", target, config, out_root=tmp_path, record=False)
    finally:
        target.close()
    result = outcome.result
    hand = [r for r in result.rows if r.extra["origin"] == "hand"]
    generated = [r for r in result.rows if r.extra["origin"] == "generated"]
    assert [r.id for r in hand] == ["q1", "q2", "q3"] and generated  # hand-written first
    assert all(set(r.extra["ranks"]) == {"hybrid", "dense", "bm25"} for r in result.rows)
    for spec in result.metrics:  # every aggregate is the mean of its group's rows
        rows = hand if spec.name.startswith("hand_") else generated
        assert result.aggregates[spec.name].n == len(rows)
        assert result.aggregates[spec.name].value == pytest.approx(
            statistics.fmean(r.scores[spec.field] for r in rows)
        )
    assert result.aggregates["hand_hybrid_recall@5"].value == 1.0
    assert result.aggregates["hand_dense_mrr"].value > 0.5
    q1 = hand[0]
    rank = q1.extra["ranks"]["hybrid"]
    assert q1.passed and q1.scores["hand_hybrid_mrr"] == 1 / rank
    assert q1.reference == "widgets.rst" and "widgets.rst" in q1.output
    settings = json.loads((outcome.run_dir / "run.json").read_text())["settings"]
    assert settings["collection"] == "docs"
    assert settings["collection_version"] == open_index(index_dir).version
    assert "# retrieval (v1) on tiny" in outcome.report_path.read_text()
    log = next(Path(os.environ["CHATFORGE_DAILY_LOG"]).glob("*.md")).read_text()
    assert "eval: retrieval on tiny" in log and outcome.run_dir.name in log


@pytest.mark.parametrize(
    ("lines", "extra", "message"),
    [
        (['{"id": "x", "question": "Why?"}'], [], "questions.jsonl:1: expected"),
        (['{"id": "x", "question": "Why?", "paths": ["nope.html"]}'], [], "no page nope.html"),
        ([], ["--collection", "nope"], "--collection 'nope': the server has docs"),
    ],
)
def test_bad_questions_and_collections_are_named(
    rag_server, docs_index, tmp_path, capsys, lines, extra, message
):
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(line + "\n" for line in lines) or json.dumps(QUESTIONS[0]))
    argv = ["run", "retrieval", "--target", rag_server.target, "--questions", str(questions),
            "--corpus", str(docs_index[1] / "corpus"), "--out", str(tmp_path), *extra]  # fmt: skip
    assert evals_main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.glob("*-retrieval-*"))  # nothing ran, nothing written
