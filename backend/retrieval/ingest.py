"""`python -m backend ingest`: documents in, a new version of a collection's index out.

Design decisions:
- One parser and one split in the project: a corpus contract file (`documents.jsonl`, or a
  folder holding one) is read directly; a folder of .html/.md/.rst/.txt pages or `pydocs`
  is first turned into that file by running `python -m training data` as a subprocess
  (backend/ never imports training/), writing into `INDEX_DIR/corpus/`.
- Incremental: a document whose content hash, the chunking settings and the embedding
  model are unchanged keeps its chunks and vectors from the current version; only new or
  changed documents are chunked and embedded, and removed ones are dropped.
- Resumable: embeddings are saved per document under `INDEX_DIR/.partial/` as they are
  computed, so an interrupted ingest (Ctrl-C) resumes where it stopped; the folder is
  removed once a version is published.
- The version hash covers what a citation shows (including the pages' base URL), so
  changing only the URL publishes a new version without embedding anything.
- One ingest per index folder at a time (a `flock`), so two runs cannot interleave their
  versions; readers never take the lock.
- Publishing goes through `index.publish` (atomic swap), and nothing is published when the
  content did not change (same version), so a server watching the index does not reload.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import shlex
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from backend.retrieval.chunking import Chunk, ChunkSettings, chunk_document
from backend.retrieval.documents import IngestError, SourceDocument, read_documents
from backend.retrieval.embedder import MODEL_NAME, Embedder, TokenCounter, shared_embedder
from backend.retrieval.index import (
    CORPUS,
    FORMAT,
    DenseIndexSpec,
    IndexSnapshot,
    build_dense_index,
    current_folder,
    dense_index_type,
    open_index,
    publish,
)
from backend.retrieval.lexical import LexicalIndex
from chatforge.paths import chatforge_home

PYDOCS_URL = "https://docs.python.org/3.11/"  # where the pydocs pages live on the web
DOCUMENTS_FILE = "documents.jsonl"
PARTIAL_DIR = ".partial"
LOCK_FILE = ".ingest.lock"
EMBED_GROUP = 512  # chunks embedded between two saves of the resume cache


def default_index_dir(collection: str) -> Path:
    return chatforge_home() / "collections" / collection


@dataclass(frozen=True)
class IngestSettings:
    chunking: ChunkSettings = field(default_factory=ChunkSettings)
    index: DenseIndexSpec = field(default_factory=DenseIndexSpec)
    batch_size: int = 64


@dataclass
class IngestReport:
    collection: str
    index_dir: Path
    version: str
    previous_version: str | None
    published: bool
    documents: int
    chunks: int
    index_type: str
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    embedded_chunks: int = 0
    seconds: float = 0.0


# --- where the documents come from -----------------------------------------------------


def run_corpus_pipeline(source: str, out: Path) -> Path:
    """Build the corpus contract for `source` with `python -m training data` into `out`."""
    cmd = [sys.executable, "-m", "training", "data", "--source", source, "--out", str(out)]
    print(f"running the corpus pipeline: {shlex.join(cmd)}", flush=True)
    done = subprocess.run(cmd)
    if done.returncode != 0:
        raise IngestError(
            f"the corpus pipeline failed (`{shlex.join(cmd)}` exited with code "
            f"{done.returncode}); its message is above"
        )
    return out / DOCUMENTS_FILE


def resolve_documents(source: str, index_dir: Path) -> Path:
    """The documents.jsonl for `source`, running the corpus pipeline when it is pages."""
    if source == "pydocs":
        return run_corpus_pipeline(source, index_dir / CORPUS)
    path = Path(source).expanduser()
    if path.is_file():
        if path.suffix == ".jsonl":
            return path
        raise IngestError(
            f"{source}: a single page cannot be ingested; give the folder it is in, a "
            "documents.jsonl, or `pydocs`"
        )
    if path.is_dir():
        if (path / DOCUMENTS_FILE).is_file():
            return path / DOCUMENTS_FILE
        return run_corpus_pipeline(str(path.resolve()), index_dir / CORPUS)
    raise IngestError(
        f"{source}: no such file or folder; give a documents.jsonl (or a corpus folder "
        "holding one), a folder of .html/.md/.rst/.txt pages, or `pydocs`"
    )


# --- ingestion -------------------------------------------------------------------------


def _reusable(previous: IndexSnapshot | None, model: str, settings: IngestSettings) -> dict:
    """The previous version's documents, if its chunks and vectors can be reused as they are."""
    if previous is None:
        return {}
    m = previous.manifest
    if m.get("embedding_model") != model or m.get("chunking") != asdict(settings.chunking):
        return {}
    return m["documents"]


def _cache_key(doc_hash: str, model: str, settings: IngestSettings) -> str:
    payload = json.dumps([doc_hash, model, asdict(settings.chunking)])
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _embed(
    pending: list[tuple[SourceDocument, list[Chunk]]],
    cache_dir: Path,
    model: str,
    settings: IngestSettings,
    embedder: Embedder | None,
) -> tuple[dict[str, np.ndarray], int]:
    """Vectors of each pending document (by id), from the resume cache or the model."""
    vectors: dict[str, np.ndarray] = {}
    todo = []
    for doc, chunks in pending:
        cached = cache_dir / f"{_cache_key(doc.content_hash, model, settings)}.npy"
        if cached.is_file():
            vectors[doc.id] = np.load(cached)
        else:
            todo.append((doc, chunks, cached))
    total = sum(len(c) for _, c, _ in todo)
    if not todo:
        return vectors, 0
    embedder = embedder or shared_embedder()
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tqdm(total=total, desc="embedding", unit="chunk") as bar:
        start = 0
        while start < len(todo):
            group, size = [], 0
            while start < len(todo) and (not group or size + len(todo[start][1]) <= EMBED_GROUP):
                group.append(todo[start])
                size += len(todo[start][1])
                start += 1
            texts = [c.indexed_text for _, chunks, _ in group for c in chunks]
            embedded = embedder.encode(texts, batch_size=settings.batch_size)
            offset = 0
            for doc, chunks, cached in group:
                vectors[doc.id] = embedded[offset : offset + len(chunks)]
                offset += len(chunks)
                np.save(cached, vectors[doc.id])
            bar.update(size)
    return vectors, total


@contextmanager
def _exclusive(index_dir: Path):
    """One ingest per index folder at a time (an advisory lock, released on exit or crash)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK_FILE, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IngestError(
                f"{index_dir}: another ingest is updating this index; wait for it to finish"
            ) from None
        yield


def _plan(docs, previous, reusable, settings, count, report):
    """Split documents into kept (chunks and vectors reused) and pending (to embed)."""
    kept: dict[str, tuple[list[Chunk], np.ndarray]] = {}
    pending: list[tuple[SourceDocument, list[Chunk]]] = []
    before = previous.manifest["documents"] if previous else {}
    for doc in tqdm(docs, desc="chunking", unit="doc", disable=len(docs) < 50):
        old = reusable.get(doc.id)
        if old and old["hash"] == doc.content_hash:
            span = slice(old["first_chunk"], old["first_chunk"] + old["chunks"])
            kept[doc.id] = (previous.chunks[span], previous.vectors[span])
            report.unchanged += 1
            continue
        (report.changed if doc.id in before else report.added).append(doc.id)
        pending.append((doc, chunk_document(doc, settings.chunking, count)))
    ids = {d.id for d in docs}
    report.removed = sorted(d for d in before if d not in ids)
    return kept, pending


def ingest(
    documents_file: Path,
    collection: str,
    index_dir: Path,
    settings: IngestSettings | None = None,
    embedder: Embedder | None = None,
    source: str = "",
    base_url: str = "",
) -> IngestReport:
    """Bring the index in `index_dir` up to date with `documents_file`; `base_url`, when
    given, is where the pages are on the web (citations link to base_url + path#anchor)."""
    index_dir = Path(index_dir)
    with _exclusive(index_dir):
        return _ingest(
            documents_file, collection, index_dir, settings or IngestSettings(), embedder,
            source, base_url,
        )  # fmt: skip


def _ingest(documents_file, collection, index_dir, settings, embedder, source, base_url):
    started = time.perf_counter()
    docs = read_documents(documents_file)
    model = embedder.name if embedder else MODEL_NAME
    previous = open_index(index_dir) if current_folder(index_dir) else None
    report = IngestReport(collection, index_dir, "", previous and previous.version, False, 0, 0, "")
    count = TokenCounter(embedder.model_dir if embedder else None)
    reusable = _reusable(previous, model, settings)
    kept, pending = _plan(docs, previous, reusable, settings, count, report)

    cache_dir = index_dir / PARTIAL_DIR
    new_vectors, report.embedded_chunks = _embed(pending, cache_dir, model, settings, embedder)
    for doc, chunks in pending:
        kept[doc.id] = (chunks, new_vectors[doc.id])

    chunks: list[Chunk] = []
    parts: list[np.ndarray] = []
    documents: dict[str, dict] = {}
    for doc in docs:
        doc_chunks, doc_vectors = kept[doc.id]
        documents[doc.id] = {
            "path": doc.path,
            "title": doc.title,
            "hash": doc.content_hash,
            "first_chunk": len(chunks),
            "chunks": len(doc_chunks),
        }
        chunks.extend(doc_chunks)
        parts.append(doc_vectors)
    if not chunks:
        raise IngestError(f"{documents_file}: the documents produced no chunks")
    vectors = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
    index_type = settings.index.resolve(len(chunks))
    content = json.dumps(
        [model, asdict(settings.chunking), index_type, asdict(settings.index), base_url,
         [(d.id, documents[d.id]["hash"]) for d in docs]]
    )  # fmt: skip
    version = hashlib.sha256(content.encode()).hexdigest()[:16]
    report.version, report.documents, report.chunks = version, len(docs), len(chunks)
    report.index_type = index_type
    if previous is None or previous.version != version:
        dense = build_dense_index(vectors, settings.index)
        lexical = LexicalIndex.build([c.indexed_text for c in chunks])
        manifest = {
            "format": FORMAT,
            "collection": collection,
            "version": version,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "source": source or str(documents_file),
            "documents_file": str(Path(documents_file).resolve()),
            "base_url": base_url,
            "embedding_model": model,
            "dimension": int(vectors.shape[1]),
            "chunking": asdict(settings.chunking),
            "index": {"type": dense_index_type(dense), "spec": asdict(settings.index)},
            "counts": {"documents": len(docs), "chunks": len(chunks)},
            "documents": documents,
        }
        publish(index_dir, manifest, chunks, vectors, dense, lexical)
        report.published = True
    shutil.rmtree(cache_dir, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    return report
