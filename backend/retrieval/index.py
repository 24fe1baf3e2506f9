"""The on-disk index of a collection: versions, the atomic swap, and the dense FAISS index.

Layout of an index folder:

    INDEX_DIR/current            -> versions/<version>   (a symlink, swapped atomically)
    INDEX_DIR/versions/<version>/manifest.json, chunks.jsonl, vectors.npy, dense.faiss, lexical/
    INDEX_DIR/corpus/            documents.jsonl etc., when ingestion ran the corpus pipeline

Design decisions:
- A version folder is complete before it becomes visible: it is written under a temporary
  name, renamed, and only then is `current` pointed at it with `os.replace` on a new
  symlink, which is atomic on POSIX. A reader resolves `current` once and reads every file
  from that one folder, so it sees the old index or the new one, never half of each.
- The previous version is kept when a new one is published (older ones are pruned), so a
  reader that resolved `current` just before a swap can still finish reading; a reader
  that loses a race with pruning anyway retries on the new `current`.
- The version id is a hash of the content (chunks, settings, model), so re-ingesting
  unchanged documents publishes nothing, and a response cache keyed on it stays valid
  exactly as long as the index content does.
- `vectors.npy` keeps the normalised embeddings beside the FAISS index, so re-ingestion
  reuses unchanged documents' vectors whatever the index type (HNSW cannot hand them back).
- Searches run FAISS single-threaded (`single_thread_search`): a request is one query, and
  concurrency comes from the server's request threads.
- Index type by size: exact inner product (`flat`) below `approx_threshold` chunks, HNSW
  beyond (no training step, high recall at low latency); IVF is available by name.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

from backend.retrieval.chunking import Chunk
from backend.retrieval.documents import IngestError
from backend.retrieval.lexical import LexicalIndex

CURRENT = "current"
VERSIONS = "versions"
CORPUS = "corpus"
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
VECTORS = "vectors.npy"
DENSE = "dense.faiss"
LEXICAL = "lexical"
FORMAT = 1

IndexType = Literal["auto", "flat", "hnsw", "ivf"]


@dataclass(frozen=True)
class DenseIndexSpec:
    type: IndexType = "auto"
    approx_threshold: int = 50_000  # `auto`: exact below this many chunks, HNSW from it
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 96
    ivf_nlist: int = 0  # 0: about 2 * sqrt(chunks)
    ivf_nprobe: int = 24

    def resolve(self, n: int) -> str:
        if self.type != "auto":
            return self.type
        return "flat" if n < self.approx_threshold else "hnsw"


def build_dense_index(vectors: np.ndarray, spec: DenseIndexSpec) -> faiss.Index:
    """An inner-product index over normalised vectors, of the type `spec` picks for their number."""
    n, dim = vectors.shape
    kind = spec.resolve(n)
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = spec.hnsw_ef_construction
    elif kind == "ivf":
        nlist = spec.ivf_nlist or max(1, min(n // 39, int(2 * math.sqrt(n))))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(0).permutation(n)[: 64 * nlist]  # k-means needs ~40/list
        index.train(vectors[np.sort(sample)])
    else:
        raise ValueError(f"index type {kind!r}: use auto, flat, hnsw or ivf")
    index.add(vectors)
    tune_dense_index(index, spec)
    return index


def tune_dense_index(index: faiss.Index, spec: DenseIndexSpec) -> None:
    """Search-time parameters, which FAISS does not keep in the saved file for every type."""
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = spec.hnsw_ef_search
    elif isinstance(index, faiss.IndexIVF):
        index.nprobe = spec.ivf_nprobe


def single_thread_search() -> None:
    """One OpenMP thread per FAISS call, for searching one query at a time (the server runs
    one per request thread). On a few shared cores OpenMP's fork-join costs more than it
    gains: one query over 200k exact vectors took 12.6 ms with 1 thread and 85 ms with 2
    on the 2-core development machine. Building an index is left multi-threaded."""
    faiss.omp_set_num_threads(1)


def dense_index_type(index: faiss.Index) -> str:
    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(index, faiss.IndexIVF):
        return "ivf"
    return "flat"


@dataclass
class IndexSnapshot:
    """One loaded version: manifest, chunks, vectors and both indexes, all from one folder."""

    folder: Path
    manifest: dict
    chunks: list[Chunk]
    vectors: np.ndarray
    dense: faiss.Index
    lexical: LexicalIndex

    @property
    def version(self) -> str:
        return self.manifest["version"]

    def url_of(self, chunk: Chunk) -> str:
        """The chunk's section on the web, or "" when the collection has no base URL."""
        base = self.manifest.get("base_url", "")
        if not base:
            return ""
        return f"{base}{chunk.source_path}" + (f"#{chunk.anchor}" if chunk.anchor else "")

    def search_dense(self, query_vectors: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Ids and cosine scores, best first, one row per query; -1 ids pad short rows."""
        n = max(1, min(n, len(self.chunks)))
        scores, ids = self.dense.search(np.ascontiguousarray(query_vectors, dtype=np.float32), n)
        return ids, scores


def current_folder(index_dir: Path) -> Path | None:
    """The version folder `current` points at, or None when there is no index yet."""
    link = Path(index_dir) / CURRENT
    try:
        target = os.readlink(link)
    except OSError:
        return None
    return (link.parent / target).resolve()


def being_built(index_dir: Path) -> bool:
    """No version published yet, and the folder holds nothing but what an ingest writes
    while it works (its corpus, resume cache and lock): an index on its way. A folder with
    other files is not an index folder at all."""
    index_dir = Path(index_dir)
    if current_folder(index_dir) is not None or not index_dir.is_dir():
        return False
    return all(p.name in (CORPUS, VERSIONS) or p.name.startswith(".") for p in index_dir.iterdir())


def read_manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text())


def _load_folder(folder: Path) -> IndexSnapshot:
    manifest = read_manifest(folder)
    chunks = [Chunk(**json.loads(line)) for line in (folder / CHUNKS).read_text().splitlines()]
    vectors = np.load(folder / VECTORS)
    dense = faiss.read_index(str(folder / DENSE))
    tune_dense_index(dense, DenseIndexSpec(**manifest["index"]["spec"]))
    lexical = LexicalIndex.load(folder / LEXICAL)
    if not len(chunks) == dense.ntotal == len(vectors):
        raise IngestError(f"{folder}: chunks, vectors and the FAISS index disagree in size")
    return IndexSnapshot(folder, manifest, chunks, vectors, dense, lexical)


def no_index_message(index_dir: Path) -> str:
    return (
        f"{index_dir}: no retrieval index there; build one with "
        f"`python -m backend ingest PATH|pydocs --collection NAME --index-dir {index_dir}`"
    )


def open_index(index_dir: Path | str, attempts: int = 5) -> IndexSnapshot:
    """Load the current version; retries if a concurrent ingest pruned it mid-read."""
    index_dir = Path(index_dir)
    for attempt in range(attempts):
        folder = current_folder(index_dir)
        if folder is None:
            raise IngestError(no_index_message(index_dir))
        try:
            return _load_folder(folder)
        except (FileNotFoundError, NotADirectoryError):
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def publish(
    index_dir: Path,
    manifest: dict,
    chunks: list[Chunk],
    vectors: np.ndarray,
    dense: faiss.Index,
    lexical: LexicalIndex,
) -> Path:
    """Write a complete version folder, point `current` at it atomically, prune old ones."""
    versions = index_dir / VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    version = manifest["version"]
    final = versions / version
    if not final.exists():
        work = Path(tempfile.mkdtemp(dir=versions, prefix=f".{version}-"))
        try:
            with (work / CHUNKS).open("w") as f:
                for chunk in chunks:
                    f.write(json.dumps(chunk.to_json(), ensure_ascii=False) + "\n")
            np.save(work / VECTORS, vectors)
            faiss.write_index(dense, str(work / DENSE))
            lexical.save(work / LEXICAL)
            (work / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
            os.chmod(work, 0o755)
            work.rename(final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    previous = current_folder(index_dir)
    link = index_dir / f".{CURRENT}-{version}"
    link.unlink(missing_ok=True)
    link.symlink_to(Path(VERSIONS) / version)
    os.replace(link, index_dir / CURRENT)
    keep = {version, previous.name if previous else ""}
    for old in versions.iterdir():
        if old.name not in keep and not old.name.startswith("."):
            shutil.rmtree(old, ignore_errors=True)
    return final
