"""Retrieval latency and approximate-index recall at 10k and 200k chunks, same run.

For each size, synthetic chunk vectors are drawn around the real chunk embeddings of an
ingested collection (each one a real vector plus Gaussian noise, renormalised), so the
data keeps the clustered shape of real embeddings instead of the uniform noise that makes
every index look bad. Queries are real questions (the hand-written retrieval eval set and
generated ones) embedded by the real model. The exact index (`flat`) is the baseline;
HNSW and IVF are built with the same `build_dense_index` the ingester uses, on every core,
and searched one query at a time on one FAISS thread, as the server does. Prints p50/p95
search latency with and without the query embedding, the speed-up over exact, and each
approximate index's recall@10 against exact; writes JSON under runs/bench/ and an entry in
daily-log/.

    python bench/retrieval.py [--index-dir DIR] [--sizes 10000,200000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import faiss  # noqa: E402

from backend.retrieval.documents import IngestError  # noqa: E402
from backend.retrieval.embedder import shared_embedder  # noqa: E402
from backend.retrieval.index import (  # noqa: E402
    DenseIndexSpec,
    build_dense_index,
    open_index,
    single_thread_search,
)
from backend.retrieval.ingest import default_index_dir  # noqa: E402
from bench import percentiles  # noqa: E402
from chatforge.journal import append_entry  # noqa: E402
from evals.suites.retrieval import generated_items, load_items  # noqa: E402

KINDS = ("flat", "hnsw", "ivf")
BUILD_THREADS = faiss.omp_get_max_threads()
TOP_K = 10


def synthetic_vectors(centres: np.ndarray, n: int, noise: float, seed: int) -> np.ndarray:
    """`n` unit vectors, each a random centre plus N(0, noise^2) per dimension."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, centres.shape[1]), dtype=np.float32)
    for start in range(0, n, 50_000):
        stop = min(n, start + 50_000)
        block = centres[rng.integers(0, len(centres), stop - start)]
        block = block + rng.normal(0.0, noise, block.shape).astype(np.float32)
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def time_search(index, query_vectors: np.ndarray) -> tuple[list[float], np.ndarray]:
    index.search(query_vectors[:5], TOP_K)  # warm-up
    times, ids = [], []
    for q in query_vectors:
        start = time.perf_counter()
        _, found = index.search(q.reshape(1, -1), TOP_K)
        times.append((time.perf_counter() - start) * 1000)
        ids.append(found[0])
    return times, np.stack(ids)


def time_embed_and_search(index, embedder, texts: list[str]) -> list[float]:
    times = []
    for text in texts:
        start = time.perf_counter()
        index.search(embedder.encode([text]), TOP_K)
        times.append((time.perf_counter() - start) * 1000)
    return times


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / TOP_K for f, e in zip(found, exact, strict=True)]))


def bench_size(n, centres, texts, query_vectors, embedder, args) -> dict:
    print(f"\n{n} chunks: drawing synthetic vectors", flush=True)
    vectors = synthetic_vectors(centres, n, args.noise, args.seed)
    spec = DenseIndexSpec()
    rows, exact_ids = {}, None
    for kind in KINDS:
        faiss.omp_set_num_threads(BUILD_THREADS)  # building uses every core
        start = time.perf_counter()
        index = build_dense_index(vectors, replace(spec, type=kind))
        built = time.perf_counter() - start
        single_thread_search()  # searching one query at a time, as the server does
        search_ms, ids = time_search(index, query_vectors)
        embed_ms = time_embed_and_search(index, embedder, texts[: args.embed_queries])
        row = {
            "build_s": built,
            "search": percentiles(search_ms),
            "embed_and_search": percentiles(embed_ms),
        }
        if kind == "flat":
            exact_ids = ids
        else:
            row["recall@10_vs_exact"] = recall_at_k(ids, exact_ids)
            row["speedup_p50_vs_exact"] = rows["flat"]["search"]["p50_ms"] / row["search"]["p50_ms"]
        rows[kind] = row
        recall = f", recall@10 {row['recall@10_vs_exact']:.3f}" if kind != "flat" else ""
        print(
            f"  {kind:5s} built in {built:6.1f} s; search p50 {row['search']['p50_ms']:7.2f} ms "
            f"p95 {row['search']['p95_ms']:7.2f} ms; with embedding p50 "
            f"{row['embed_and_search']['p50_ms']:7.2f} ms p95 "
            f"{row['embed_and_search']['p95_ms']:7.2f} ms{recall}",
            flush=True,
        )
        del index
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--index-dir",
        type=Path,
        default=default_index_dir("pydocs"),
        help="an ingested collection whose embeddings seed the synthetic data",
    )
    parser.add_argument("--sizes", default="10000,200000", help="comma-separated chunk counts")
    parser.add_argument("--queries", type=int, default=200, help="queries timed per index")
    parser.add_argument(
        "--embed-queries",
        type=int,
        default=50,
        help="of those, timed with the query embedding included",
    )
    parser.add_argument("--noise", type=float, default=0.03, help="per-dimension noise std")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench")
    args = parser.parse_args()  # fmt: skip
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
        if min(sizes) < 1000 or args.queries < 10 or not 1 <= args.embed_queries <= args.queries:
            raise ValueError
    except ValueError:
        parser.error(
            "--sizes are integers >= 1000; --queries >= 10; 1 <= --embed-queries <= --queries"
        )
    try:
        snapshot = open_index(args.index_dir)
    except IngestError as exc:
        parser.error(str(exc))
    corpus = Path(snapshot.manifest["documents_file"]).parent
    items = load_items() + generated_items(corpus, "all", args.queries, args.seed)
    texts = [item.question for item in items][: args.queries]
    embedder = shared_embedder()
    query_vectors = embedder.encode(texts)
    print(
        f"{len(texts)} queries; centres: {len(snapshot.vectors)} real chunk embeddings of "
        f"{snapshot.manifest['collection']} {snapshot.version}; FAISS builds on "
        f"{BUILD_THREADS} threads, searches on 1"
    )
    result = {
        "collection": snapshot.manifest["collection"],
        "version": snapshot.version,
        "queries": len(texts),
        "embed_queries": args.embed_queries,
        "noise": args.noise,
        "seed": args.seed,
        "faiss_build_threads": BUILD_THREADS,
        "faiss_search_threads": 1,
        "index_spec": DenseIndexSpec().__dict__,
        "sizes": {},
    }
    for n in sizes:
        result["sizes"][str(n)] = bench_size(
            n, snapshot.vectors, texts, query_vectors, embedder, args
        )

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"retrieval-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    largest = result["sizes"][str(max(sizes))]
    print(f"\nat {max(sizes)} chunks (targets: p95 <= 20 ms without embedding, recall@10 >= 0.95):")
    for kind in ("hnsw", "ivf"):
        row = largest[kind]
        print(
            f"  {kind}: p95 {row['search']['p95_ms']:.2f} ms, "
            f"{row['speedup_p50_vs_exact']:.1f}x faster than exact at p50, "
            f"recall@10 {row['recall@10_vs_exact']:.3f}"
        )
    print(f"  written {path}")
    numbers = {}
    for n, rows in result["sizes"].items():
        numbers[f"{n} exact p95 ms"] = rows["flat"]["search"]["p95_ms"]
        for kind in ("hnsw", "ivf"):
            numbers[f"{n} {kind} p95 ms"] = rows[kind]["search"]["p95_ms"]
            numbers[f"{n} {kind} recall@10"] = rows[kind]["recall@10_vs_exact"]
        numbers[f"{n} hnsw p95 ms with embedding"] = rows["hnsw"]["embed_and_search"]["p95_ms"]
    append_entry("bench", "retrieval (exact vs HNSW/IVF)", numbers, [path])
    return 0


if __name__ == "__main__":
    sys.exit(main())
