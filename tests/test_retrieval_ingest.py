"""Ingestion in-process with the real embedding model: chunking within the budget,
incremental re-ingest, the atomic swap under a concurrent reader, rank fusion."""

from __future__ import annotations

import fcntl
import re
import threading

import numpy as np
import pytest

from backend.retrieval.chunking import ChunkSettings, chunk_document
from backend.retrieval.documents import IngestError, SourceDocument, read_documents
from backend.retrieval.embedder import TokenCounter, shared_embedder
from backend.retrieval.hybrid import HybridRetriever, reciprocal_rank_fusion
from backend.retrieval.index import VERSIONS, current_folder, open_index
from backend.retrieval.ingest import ingest
from tests.rag_fixtures import document, write_documents

SENTENCE = "The {n}th sprocket of the assembly line is polished with a soft cloth before use."


def corpus(extra: str = "") -> list[dict]:
    return [
        document("alpha.html", "Alpha", [("Alpha", "a", "Alpha pages talk about kites." + extra)]),
        document("beta.html", "Beta", [("Beta", "b", "Beta pages describe canoes and paddles.")]),
        document("gamma.html", "Gamma", [("Gamma", "", "Gamma pages explain how bread rises.")]),
    ]


@pytest.fixture(scope="module")
def embedder():
    return shared_embedder()


@pytest.fixture(scope="module")
def count():
    return TokenCounter()


def test_chunks_follow_sections_stay_in_budget_and_overlap(count):
    long_text = "\n\n".join(
        " ".join(SENTENCE.format(n=p * 10 + s) for s in range(3)) for p in range(8)
    )
    sections = [("Assembly", "top", "Short intro."), ("Line", "line", long_text)]
    doc = SourceDocument.model_validate(document("a.html", "Assembly", sections))
    settings = ChunkSettings(max_tokens=80, overlap_tokens=24)
    chunks = chunk_document(doc, settings, count)
    assert chunks[0].anchor == "top" and chunks[0].text == "Short intro."
    body = [c for c in chunks if c.anchor == "line"]
    assert len(body) >= 6
    assert all(count(c.indexed_text) <= settings.max_tokens for c in chunks)
    assert all(c.heading == "Assembly — Line" for c in body)
    for before, after in zip(body, body[1:], strict=False):
        first_sentence = re.split(r"(?<=\.)\s+", after.text)[0]
        assert first_sentence in before.text  # whole trailing sentences carried over
    every_sentence = [SENTENCE.format(n=n)[:-1] for n in range(80) if n % 10 < 3]
    assert all(any(s in c.text for c in body) for s in every_sentence)


def test_a_long_paragraph_without_breaks_is_cut_by_words(count):
    words = " ".join(f"word{i}" for i in range(400))
    doc = SourceDocument.model_validate(document("w.txt", "Words", [("Words", "", words)]))
    chunks = chunk_document(doc, ChunkSettings(max_tokens=64, overlap_tokens=0), count)
    assert len(chunks) > 5
    assert all(count(c.indexed_text) <= 64 for c in chunks)
    assert " ".join(c.text for c in chunks) == words


def test_rank_fusion_weights_and_ties():
    fused = reciprocal_rank_fusion([([1, 2, 3], 1.0), ([3, 2, 4], 1.0)], k=4)
    assert [i for i, _, _ in fused] == [3, 2, 1, 4]  # 1/63 + 1/61 > 2/62
    assert fused[0][2] == [3, 1] and fused[3][2] == [None, 3]
    tie = reciprocal_rank_fusion([([7, 5], 1.0), ([5, 7], 1.0)], k=2)
    assert [i for i, _, _ in tie] == [7, 5]  # equal scores: the dense rank decides
    only_lexical = reciprocal_rank_fusion([([1, 2, 3], 0.0), ([3, 2, 4], 1.0)], k=2)
    assert [i for i, _, _ in only_lexical] == [3, 2]


def test_bad_documents_file_names_the_line(tmp_path):
    path = tmp_path / "documents.jsonl"
    path.write_text('{"id": "a", "path": "a", "text": "x"}\n{"id": "b", "text": "y"}\n')
    with pytest.raises(IngestError, match=r"documents.jsonl:2: path: Field required"):
        read_documents(path)


def test_ingest_then_incremental_reingest_touches_only_the_changed_file(tmp_path, embedder):
    docs_file = write_documents(tmp_path / "documents.jsonl", corpus())
    index_dir = tmp_path / "index"
    first = ingest(docs_file, "t", index_dir, embedder=embedder)
    assert first.published and first.added == ["alpha.html", "beta.html", "gamma.html"]
    assert first.embedded_chunks == first.chunks == 3
    before = open_index(index_dir)

    write_documents(docs_file, corpus(extra=" Kites fly best in steady wind."))
    second = ingest(docs_file, "t", index_dir, embedder=embedder)
    assert second.changed == ["alpha.html"] and second.unchanged == 2
    assert second.embedded_chunks == 1
    assert second.version != first.version
    after = open_index(index_dir)
    assert "steady wind" in after.chunks[0].text
    np.testing.assert_array_equal(after.vectors[1:], before.vectors[1:])  # reused, not redone
    assert not np.array_equal(after.vectors[0], before.vectors[0])

    third = ingest(docs_file, "t", index_dir, embedder=embedder)
    assert not third.published and third.embedded_chunks == 0
    assert third.version == second.version
    assert current_folder(index_dir).name == second.version

    write_documents(docs_file, corpus()[1:])
    fourth = ingest(docs_file, "t", index_dir, embedder=embedder)
    assert fourth.removed == ["alpha.html"] and fourth.embedded_chunks == 0
    assert {c.doc_id for c in open_index(index_dir).chunks} == {"beta.html", "gamma.html"}
    assert len(list((index_dir / VERSIONS).iterdir())) == 2  # current and previous only


def test_hybrid_search_finds_the_page(tmp_path, embedder):
    docs_file = write_documents(tmp_path / "documents.jsonl", corpus())
    ingest(docs_file, "t", tmp_path / "index", embedder=embedder)
    retriever = HybridRetriever(open_index(tmp_path / "index"), embedder)
    for weights in [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0)]:
        hits = retriever.search("how does bread rise?", 2, *weights)
        assert hits[0].chunk.doc_id == "gamma.html"
        assert hits[0].score >= hits[-1].score


def test_a_reader_during_reingest_never_fails(tmp_path, embedder):
    docs_file = write_documents(tmp_path / "documents.jsonl", corpus())
    index_dir = tmp_path / "index"
    published = {ingest(docs_file, "t", index_dir, embedder=embedder).version}
    errors: list[BaseException] = []
    seen: set[str] = set()
    stop = threading.Event()
    query = embedder.encode(["kites"])

    def reader() -> None:
        while not stop.is_set():
            try:
                snapshot = open_index(index_dir)
                assert len(snapshot.chunks) == snapshot.dense.ntotal == len(snapshot.vectors)
                ids, _ = snapshot.search_dense(query, 3)
                assert all(0 <= i < len(snapshot.chunks) for i in ids[0])
                assert snapshot.lexical.search("kites", 3)[0].size > 0
                seen.add(snapshot.version)
            except BaseException as exc:  # noqa: BLE001 - any failure is the test's failure
                errors.append(exc)
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for round_ in range(3):
            write_documents(docs_file, corpus(extra=f" Round {round_} of kite flying."))
            published.add(ingest(docs_file, "t", index_dir, embedder=embedder).version)
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert len(seen) >= 2 and seen <= published


def test_a_failed_ingest_resumes_without_embedding_again(tmp_path, embedder):
    docs_file = write_documents(tmp_path / "documents.jsonl", corpus())
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    (index_dir / VERSIONS).write_text("a file where the versions folder goes")
    with pytest.raises(OSError):
        ingest(docs_file, "t", index_dir, embedder=embedder)
    assert current_folder(index_dir) is None  # nothing published
    assert len(list((index_dir / ".partial").iterdir())) == 3  # but the embeddings are kept
    (index_dir / VERSIONS).unlink()
    report = ingest(docs_file, "t", index_dir, embedder=embedder)
    assert report.published and report.chunks == 3 and report.embedded_chunks == 0
    assert not (index_dir / ".partial").exists()


def test_a_second_ingest_of_the_same_index_is_refused(tmp_path, embedder):
    docs_file = write_documents(tmp_path / "documents.jsonl", corpus())
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    with open(index_dir / ".ingest.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a running ingest holds it
        with pytest.raises(IngestError, match="another ingest is updating this index"):
            ingest(docs_file, "t", index_dir, embedder=embedder)
    assert current_folder(index_dir) is None
