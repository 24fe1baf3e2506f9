"""Retrieval end to end: `python -m backend ingest` on a folder of pages, then a real
server process (`serve --collection NAME=DIR`) answering Retrieve, ListCollections and
Chat with rag on, and picking up a re-ingest while it runs."""

from __future__ import annotations

import re
import subprocess
import sys

import grpc
import pytest

from backend.client import ChatClient, RetryPolicy
from backend.launcher import BackendProcess
from backend.retrieval.embedder import shared_embedder
from backend.retrieval.index import open_index
from backend.retrieval.ingest import ingest
from tests.helpers import run_backend, text_of, wait_for
from tests.rag_fixtures import PAGES, document, write_documents, write_pages

NOT_FOUND = grpc.StatusCode.NOT_FOUND
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def test_ingest_of_a_folder_of_pages(docs_index):
    _, index_dir, stdout = docs_index
    assert "4 added, 0 changed, 0 removed, 0 unchanged" in stdout
    assert f"serve it: python -m backend serve --collection docs={index_dir}" in stdout
    snapshot = open_index(index_dir)
    assert set(snapshot.manifest["documents"]) == set(PAGES)
    assert snapshot.manifest["embedding_model"] == "all-MiniLM-L6-v2"
    assert snapshot.manifest["dimension"] == 384 and snapshot.manifest["index"]["type"] == "flat"
    anchors = {(c.source_path, c.anchor) for c in snapshot.chunks}
    assert ("guide/sorting.html", "sorted") in anchors  # HTML ids
    assert ("json.md", "decoding") in anchors  # Markdown heading slugs
    assert (index_dir / "corpus" / "documents.jsonl").is_file()  # the one corpus pipeline ran


def test_ingest_errors_are_one_line_and_change_nothing(docs_index, tmp_path):
    index_dir = docs_index[1]
    before = open_index(index_dir).version
    missing = run_backend("ingest", str(tmp_path / "nope"), "--collection", "docs",
                          "--index-dir", str(index_dir))  # fmt: skip
    assert missing.returncode == 2
    assert "no such file or folder" in missing.stderr and "Traceback" not in missing.stderr
    bad = tmp_path / "documents.jsonl"
    bad.write_text('{"id": "x", "path": "x.md"}\n')
    broken = run_backend("ingest", str(bad), "--collection", "docs", "--index-dir", str(index_dir))
    assert broken.returncode == 2 and "documents.jsonl:1: text: Field required" in broken.stderr
    assert open_index(index_dir).version == before


def test_list_collections_and_retrieve(rag_server, docs_index):
    version = open_index(docs_index[1]).version
    with ChatClient(rag_server.target) as client:
        [collection] = client.list_collections().collections
        chunks = client.retrieve("How do I parse JSON text into Python dicts?", k=3).chunks
        lexical = client.retrieve("sprockets crate", k=2, dense_weight=0.0).chunks
    assert (collection.name, collection.documents, collection.is_default) == ("docs", 4, True)
    assert collection.embedding_model == "all-MiniLM-L6-v2" and collection.version == version
    assert len(chunks) == 3
    assert (chunks[0].source_path, chunks[0].anchor) == ("json.md", "decoding")
    assert "json.loads" in chunks[0].text and chunks[0].title == "The json module — Decoding"
    assert [c.score for c in chunks] == sorted((c.score for c in chunks), reverse=True)
    assert lexical[0].source_path == "widgets.rst"


@pytest.mark.parametrize(
    ("kwargs", "code", "fragment"),
    [
        ({"collection": "nope"}, NOT_FOUND, "unknown collection 'nope'; this server has: docs"),
        ({"k": 21}, INVALID, "k: 21 is outside [1, 20]"),
        ({"k": -1}, INVALID, "k: -1 is outside"),
        ({"dense_weight": -0.5}, INVALID, "dense_weight: -0.5 is outside [0, 10]"),
        ({"lexical_weight": 11.0}, INVALID, "lexical_weight: 11 is outside"),
        ({"dense_weight": 0.0, "lexical_weight": 0.0}, INVALID, "at least one must be above 0"),
        ({"query": " "}, INVALID, "query: must not be empty"),
    ],
)
def test_retrieve_rejects_bad_requests(rag_server, kwargs, code, fragment):
    with ChatClient(rag_server.target) as client, pytest.raises(grpc.RpcError) as info:
        client.retrieve(**{"query": "sorting", **kwargs})
    assert info.value.code() == code
    assert fragment in info.value.details()


def test_chat_sends_citations_after_started_and_before_any_delta(rag_server):
    question = "What does widgets.frobnicate return?"
    sampling = {"temperature": 0.0, "max_tokens": 20}
    with ChatClient(rag_server.target) as client:
        events = list(client.chat(question, sampling=sampling, rag={"enabled": True, "k": 2}))
        plain = list(client.chat(question, sampling=sampling))
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[:2] == ["started", "citations"] and kinds[-1] == "finished"
    assert set(kinds[2:-1]) == {"delta"}
    citations = events[1].citations.citations
    assert [c.index for c in citations] == [1, 2]
    assert (citations[0].source_path, citations[0].anchor) == ("widgets.rst", "frobnicate")
    assert citations[0].title == "Widgets — Frobnicate"
    assert "number of sprockets" in citations[0].snippet and citations[0].score > 0
    assert citations[0].url == "https://docs.example.org/widgets.rst#frobnicate"
    # the sources went into the prompt
    assert events[0].started.prompt_tokens > plain[0].started.prompt_tokens + 50
    assert "citations" not in [e.WhichOneof("event") for e in plain]


@pytest.mark.parametrize(
    ("rag", "code", "fragment"),
    [
        ({"enabled": True, "collection": "nope"}, NOT_FOUND, "rag: unknown collection 'nope'"),
        ({"enabled": True, "k": 50}, INVALID, "rag.k: 50 is outside [1, 20]"),
        ({"enabled": True, "dense_weight": 20.0}, INVALID, "rag.dense_weight: 20 is outside"),
    ],
)
def test_chat_with_bad_rag_options_is_rejected(rag_server, rag, code, fragment):
    client = ChatClient(rag_server.target, retry=RetryPolicy(attempts=1))
    with client, pytest.raises(grpc.RpcError) as info:
        list(client.chat("hi", rag=rag))
    assert info.value.code() == code
    assert fragment in info.value.details()


def test_server_serves_a_reingest_without_restarting(rag_server, docs_index):
    pages, index_dir, _ = docs_index
    ask = {"messages": "How hot should green tea water be?", "rag": {"enabled": True, "k": 2},
           "sampling": {"temperature": 0.0, "max_tokens": 8}}  # fmt: skip
    with ChatClient(rag_server.target) as client:
        first, again = list(client.chat(**ask)), list(client.chat(**ask))
    assert again[-1].finished.usage.cached and not first[-1].finished.usage.cached
    assert again[1].citations == first[1].citations  # a replay still cites before its text
    (pages / "tea.txt").write_text(PAGES["tea.txt"] + "\nOolong tea likes 90 degree water.\n")
    documents = index_dir / "corpus" / "documents.jsonl"
    subprocess.run(
        [sys.executable, "-m", "training", "data", "--source", str(pages),
         "--out", str(index_dir / "corpus")],
        check=True, capture_output=True,
    )  # fmt: skip
    base_url = open_index(index_dir).manifest["base_url"]
    report = ingest(documents, "docs", index_dir, embedder=shared_embedder(), base_url=base_url)
    assert report.changed == ["tea.txt"] and report.embedded_chunks == 1
    with ChatClient(rag_server.target) as client:
        assert wait_for(lambda: client.list_collections().collections[0].version == report.version)
        chunks = client.retrieve("oolong water temperature", k=1).chunks
        after = list(client.chat(**ask))
    assert chunks[0].source_path == "tea.txt" and "Oolong" in chunks[0].text
    assert not after[-1].finished.usage.cached  # the cache keys on the collection version


def test_a_collection_being_built_is_served_once_published(tiny_registry, tmp_path):
    """`make demo`'s first run: the server starts while an ingest is still filling the
    collection's folder, answers UNAVAILABLE for it (and the UI's toggle says why), then
    serves it after the ingest publishes, without a restart."""
    import gradio as gr

    from ui.retrieval_controls import RetrievalControls

    index_dir = tmp_path / "docs"
    index_dir.mkdir()
    extra = ["--collection", f"docs={index_dir}"]
    with (
        BackendProcess(tiny_registry, extra_args=extra, log_path=tmp_path / "s.log") as server,
        ChatClient(server.target, retry=RetryPolicy(attempts=1)) as client,
    ):
        [listed] = client.list_collections().collections
        assert (listed.name, listed.building, listed.documents, listed.version) == (
            "docs", True, 0, ""
        )  # fmt: skip
        assert "collection docs is still being built" in listed.detail
        for call in (
            lambda: client.retrieve("sprockets"),
            lambda: list(client.chat("What is a sprocket?", rag={"enabled": True})),
        ):
            with pytest.raises(grpc.RpcError) as info:
                call()
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "collection docs is still being built" in info.value.details()
            assert "serves it as soon as the ingest finishes" in info.value.details()
        with gr.Blocks():
            controls = RetrievalControls(lambda: client)
        toggle, picker, note = controls.load()
        assert toggle.interactive and picker.value == "docs"
        assert "**docs: being built.** Collection docs is still being built" in note
        unticked, message = controls.check(True, "docs")
        assert unticked.value is False
        assert message.startswith("**Answering from documents is not available yet.** Coll")

        widgets = document("widgets.rst", "Widgets", [
            ("Widgets", "", "The widgets module manages sprockets."),
            ("Frobnicate", "frobnicate", "frobnicate(crate) counts the sprockets in a crate."),
        ])  # fmt: skip
        report = ingest(write_documents(tmp_path / "documents.jsonl", [widgets]), "docs",
                        index_dir, embedder=shared_embedder())  # fmt: skip
        assert report.published
        chunks = client.retrieve("How many sprockets are in the crate?", k=1).chunks
        assert (chunks[0].source_path, chunks[0].anchor) == ("widgets.rst", "frobnicate")
        [listed] = client.list_collections().collections
        assert not listed.building and listed.detail == ""
        assert (listed.version, listed.documents) == (report.version, 1)
        events = list(client.chat("Frobnicate?", rag={"enabled": True}, sampling={"max_tokens": 2}))
        assert events[1].citations.citations[0].source_path == "widgets.rst"
        kept, note = controls.check(True, "docs")
        assert note == "docs: 1 documents, 2 chunks"


def test_serve_rejects_a_missing_index_in_one_line(tmp_path):
    bad = run_backend("serve", "--port", "0", "--collection", f"x={tmp_path / 'none'}")
    assert bad.returncode == 2
    assert "collection x:" in bad.stderr and "no retrieval index there" in bad.stderr
    assert "python -m backend ingest" in bad.stderr and "Traceback" not in bad.stderr
    pages = write_pages(tmp_path / "pages")  # a folder of other files is no index folder
    not_index = run_backend("serve", "--port", "0", "--collection", f"x={pages}")
    assert not_index.returncode == 2 and "no retrieval index there" in not_index.stderr
    malformed = run_backend("serve", "--collection", "just-a-name")
    assert malformed.returncode == 2 and "expected NAME=INDEX_DIR" in malformed.stderr


@pytest.mark.slow
def test_default_model_answer_cites_a_source(docs_index, tmp_path):
    # The default model alone, and the collection listed in the registry file this time.
    registry = tmp_path / "models.yaml"
    registry.write_text(
        "models:\n  smollm2-135m-instruct:\n    gguf: builtin\n    default: true\n"
        f"collections:\n  docs:\n    index: {docs_index[1]}\n"
    )
    with (
        BackendProcess(registry, log_path=tmp_path / "default.log") as server,
        ChatClient(server.target) as client,
    ):
        events = list(
            client.chat(
                "What does list.sort() do?",
                sampling={"temperature": 0.0, "max_tokens": 80},
                rag={"enabled": True, "k": 3},
            )
        )
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[:2] == ["started", "citations"]
    answer = text_of(events)
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", answer)}
    offered = {c.index: c.source_path for c in events[1].citations.citations}
    assert cited and cited <= set(offered), answer
    assert "guide/sorting.html" in {offered[n] for n in cited}, (answer, offered)
    assert "in place" in answer, answer  # grounded in the cited page


def test_chat_cli_prints_the_sources_before_the_answer(rag_server):
    done = run_backend(
        "chat", "What does widgets.frobnicate return?", "--rag", "--target", rag_server.target,
        "--max-tokens", "5",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "[1] Widgets — Frobnicate <https://docs.example.org/widgets.rst#frobnicate>"
    assert "finish" in done.stderr
