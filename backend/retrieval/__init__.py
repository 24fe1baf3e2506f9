"""Retrieval: documents in, a persistent hybrid (FAISS + BM25) index out, and the search over it.

Design decisions:
- One job per module: reading the corpus contract (`documents`), structure-aware chunking
  (`chunking`), the embedding model (`embedder`), the on-disk index with its atomic swap
  (`index`), BM25 (`lexical`), rank fusion (`hybrid`), ingestion (`ingest`), the server's
  loaded collections (`collections`) and the RAG prompt (`augment`).
- This package never imports training/: documents arrive as the corpus contract's JSONL,
  and folders of pages are turned into that JSONL by running `python -m training data` as
  a subprocess, so the project has one parser and one train/val/test split.
"""
