"""The server's retrieval collections: loaded at start, searched per request, reloaded on swap.

Design decisions:
- Collections load on the server's loader thread after the models; health stays
  NOT_SERVING until both are ready, and calls that arrive earlier get UNAVAILABLE.
- A collection follows its index folder: each search checks where `current` points (one
  readlink) and, when an ingest has published a new version, loads it before searching.
  Requests in flight keep the snapshot they started with, so a swap never mixes versions.
- `version` (the index's content hash) is exposed with every result, so a response cache
  can key on it and is invalidated exactly when the collection's content changes.
- Errors are `RequestError`s with the status codes of the API: no collection at all or an
  unknown name is NOT_FOUND, bad k or weights INVALID_ARGUMENT (see backend/validation.py).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc

from backend.registry import CollectionSpec
from backend.retrieval.chunking import Chunk
from backend.retrieval.embedder import Embedder, shared_embedder
from backend.retrieval.hybrid import HybridRetriever
from backend.retrieval.index import (
    IndexSnapshot,
    current_folder,
    open_index,
    single_thread_search,
)
from backend.validation import (
    RequestError,
    RetrievalParams,
    validate_query,
    validate_retrieval,
)
from chat.v1 import chat_pb2

log = logging.getLogger("chatforge.retrieval")

DEFAULT_RETRIEVE_K = 5  # Retrieve with k = 0
DEFAULT_CHAT_K = 4  # Chat with rag.k = 0: what a small model's context holds comfortably


@dataclass(frozen=True)
class Source:
    chunk: Chunk
    score: float  # the fused rank score
    url: str  # the section on the web ("" when the collection has no base URL)


@dataclass(frozen=True)
class RetrievedSources:
    """What one retrieval found, best first. A filter (the guardrails dropping flagged
    chunks) makes a new one with `dataclasses.replace(found, sources=[...])`."""

    collection: str
    version: str  # the index version the sources come from
    sources: list[Source]


class Collection:
    def __init__(self, name: str, index_dir: Path, embedder: Embedder) -> None:
        self.name = name
        self.index_dir = Path(index_dir)
        self.embedder = embedder
        self._snapshot = open_index(self.index_dir)
        self._lock = threading.Lock()

    @property
    def snapshot(self) -> IndexSnapshot:
        """The current version, reloading first if an ingest has published a new one."""
        folder = current_folder(self.index_dir)
        if folder is not None and folder != self._snapshot.folder:
            with self._lock:
                if folder != self._snapshot.folder:
                    snapshot = open_index(self.index_dir)
                    log.info(
                        "collection %s: version %s -> %s",
                        self.name, self._snapshot.version, snapshot.version,
                    )  # fmt: skip
                    self._snapshot = snapshot
        return self._snapshot

    def search(self, query: str, params: RetrievalParams) -> RetrievedSources:
        snapshot = self.snapshot
        hits = HybridRetriever(snapshot, self.embedder).search(
            query, params.k, params.dense_weight, params.lexical_weight
        )
        sources = [Source(h.chunk, h.score, snapshot.url_of(h.chunk)) for h in hits]
        return RetrievedSources(self.name, snapshot.version, sources)

    def describe(self, is_default: bool) -> chat_pb2.Collection:
        snapshot = self.snapshot
        return chat_pb2.Collection(
            name=self.name,
            documents=len(snapshot.manifest["documents"]),
            chunks=len(snapshot.chunks),
            embedding_model=snapshot.manifest["embedding_model"],
            version=snapshot.version,
            is_default=is_default,
        )


class CollectionSet:
    """The collections a server has; empty (and not ready) while the server is loading."""

    def __init__(self) -> None:
        self.collections: dict[str, Collection] = {}
        self.default = ""
        self.ready = threading.Event()

    def load(self, specs: dict[str, CollectionSpec], default: str) -> None:
        if specs:
            single_thread_search()
            embedder = shared_embedder()
            for name, spec in specs.items():
                log.info("loading collection %s from %s", name, spec.index)
                self.collections[name] = Collection(name, Path(spec.index), embedder)
                log.info("collection %s: version %s", name, self.collections[name].snapshot.version)
        self.default = default
        self.ready.set()

    def get(self, name: str, field: str) -> Collection:
        if not self.ready.is_set():
            raise RequestError(
                grpc.StatusCode.UNAVAILABLE, "the server is still loading its collections; retry"
            )
        if not self.collections:
            raise RequestError(
                grpc.StatusCode.NOT_FOUND,
                f"{field}: this server has no retrieval collection; start it with "
                "`--collection NAME=INDEX_DIR` or a `collections:` entry in models.yaml",
            )
        collection = self.collections.get(name or self.default)
        if collection is None:
            raise RequestError(
                grpc.StatusCode.NOT_FOUND,
                f"{field}: unknown collection {name!r}; this server has: "
                f"{', '.join(self.collections)}",
            )
        return collection

    def describe(self) -> list[chat_pb2.Collection]:
        if not self.ready.is_set():
            raise RequestError(
                grpc.StatusCode.UNAVAILABLE, "the server is still loading its collections; retry"
            )
        return [c.describe(name == self.default) for name, c in self.collections.items()]

    def retrieve(self, request: chat_pb2.RetrieveRequest) -> RetrievedSources:
        """The `Retrieve` RPC: validate, pick the collection, search."""
        query = validate_query(request.query)
        params = validate_retrieval(request, DEFAULT_RETRIEVE_K)
        return self.get(params.collection, "collection").search(query, params)

    def for_chat(self, rag: chat_pb2.RagOptions) -> ChatRetrieval | None:
        """The retrieval a Chat call asks for, validated before any other work (None when
        `rag.enabled` is off): bad options or an unknown collection fail the call early."""
        if not rag.enabled:
            return None
        params = validate_retrieval(rag, DEFAULT_CHAT_K, prefix="rag.")
        return ChatRetrieval(self.get(params.collection, "rag"), params)


@dataclass(frozen=True)
class ChatRetrieval:
    collection: Collection
    params: RetrievalParams

    def search(self, messages: list[dict[str, str]]) -> RetrievedSources:
        """Search with the last message, the user's (validation guarantees it)."""
        return self.collection.search(messages[-1]["content"], self.params)
