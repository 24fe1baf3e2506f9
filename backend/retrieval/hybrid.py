"""Hybrid search: dense (FAISS) and lexical (BM25) rankings fused by reciprocal rank fusion.

Design decisions:
- Reciprocal rank fusion (Cormack et al., 2009): score = sum over retrievers of
  weight / (60 + rank). It needs no score calibration between cosine similarities and
  BM25 scores, which live on unrelated scales, and the constant 60 is the paper's.
- Each retriever contributes its top `depth` candidates (at least 50, and 5 x k), so a
  chunk ranked well by one retriever only can still win; a weight of 0 switches a
  retriever off entirely, which is how "dense alone" and "BM25 alone" are measured.
- Ties break on the dense rank, then the chunk id, so results are deterministic.
- The query vector can be passed in, so batch callers (evals) embed all queries at once.
- Each step (embed, dense search, lexical search, fuse) is a span of its own, children of
  the caller's retrieval span; with tracing off they cost a no-op call each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backend.retrieval.chunking import Chunk
from backend.retrieval.embedder import Embedder
from backend.retrieval.index import IndexSnapshot
from telemetry.tracing import tracer

_tracer = tracer("chatforge.retrieval")

RRF_K = 60


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float  # the fused score


def reciprocal_rank_fusion(
    rankings: Sequence[tuple[Sequence[int], float]], k: int, rrf_k: int = RRF_K
) -> list[tuple[int, float, list[int | None]]]:
    """Fuse ranked id lists with weights; return (id, score, 1-based ranks per list) best first."""
    scores: dict[int, float] = {}
    ranks: dict[int, list[int | None]] = {}
    for position, (ids, weight) in enumerate(rankings):
        for rank, item in enumerate(ids, 1):
            if weight <= 0:
                break
            scores[item] = scores.get(item, 0.0) + weight / (rrf_k + rank)
            ranks.setdefault(item, [None] * len(rankings))[position] = rank
    order = sorted(
        scores,
        key=lambda i: (-scores[i], ranks[i][0] if ranks[i][0] is not None else 1 << 30, i),
    )
    return [(i, scores[i], ranks[i]) for i in order[:k]]


class HybridRetriever:
    def __init__(self, snapshot: IndexSnapshot, embedder: Embedder) -> None:
        self.snapshot = snapshot
        self.embedder = embedder

    def search(
        self,
        query: str,
        k: int,
        dense_weight: float = 1.0,
        lexical_weight: float = 1.0,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        depth = max(50, 5 * k)
        dense_ids: list[int] = []
        lexical_ids: list[int] = []
        if dense_weight > 0:
            if query_vector is None:
                with _tracer.start_as_current_span("retrieval.embed"):
                    query_vector = self.embedder.encode([query])
            with _tracer.start_as_current_span("retrieval.search.dense"):
                ids, _ = self.snapshot.search_dense(query_vector.reshape(1, -1), depth)
            dense_ids = [int(i) for i in ids[0] if i >= 0]
        if lexical_weight > 0:
            with _tracer.start_as_current_span("retrieval.search.lexical"):
                ids, _ = self.snapshot.lexical.search(query, depth)
            lexical_ids = [int(i) for i in ids]
        rankings = [(dense_ids, dense_weight), (lexical_ids, lexical_weight)]
        with _tracer.start_as_current_span("retrieval.fuse"):
            fused = reciprocal_rank_fusion(rankings, k)
        chunks = self.snapshot.chunks
        return [Hit(chunks[i], score) for i, score, _ in fused]
