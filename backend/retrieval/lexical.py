"""BM25 over the chunks, with the `bm25s` package (sparse precomputed scores, fast).

Design decisions:
- English stopwords and the Snowball stemmer (PyStemmer) on both chunks and queries, so
  "sorting" finds "sort"; identifiers such as `json.dumps` split into their words by the
  default token pattern, which is how people type them in questions.
- Scoring one query asks bm25s for the score of every chunk and takes the top n with
  numpy, which copes with n larger than the collection and with queries made only of
  unknown words (all zeros: nothing is returned rather than an error).
- The index is saved with bm25s's own format beside the FAISS index, inside the same
  version folder, so the lexical and dense halves can never come from different versions.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

import bm25s
import numpy as np

logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at INFO


@cache
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: list[str]) -> list[list[str]]:
    return bm25s.tokenize(
        texts, stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False
    )


class LexicalIndex:
    def __init__(self, retriever: bm25s.BM25) -> None:
        self._retriever = retriever

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        retriever = bm25s.BM25()
        retriever.index(tokenize(texts), show_progress=False)
        return cls(retriever)

    def save(self, folder: Path) -> None:
        self._retriever.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        return cls(bm25s.BM25.load(str(folder), load_corpus=False))

    def search(self, query: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Chunk ids and scores of the best `n` chunks with a positive score, best first."""
        tokens = tokenize([query])[0]
        ids = self._retriever.get_tokens_ids(tokens)
        if not ids:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores = self._retriever.get_scores_from_ids(ids)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return top.astype(np.int64), scores[top].astype(np.float32)
