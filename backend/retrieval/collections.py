"""The server's retrieval collections: loaded at start, searched per request, reloaded on swap.

Design decisions:
- Collections load on the server's loader thread after the models; health stays
  NOT_SERVING until both are ready, and calls that arrive earlier get UNAVAILABLE.
- A collection follows its index folder: each search checks where `current` points (one
  readlink) and, when an ingest has published a new version, loads it before searching.
  Requests in flight keep the snapshot they started with, so a swap never mixes versions.
- A collection whose folder has no published index yet (an ingest is building it, as on
  `make demo`'s first run) is "being built": it is listed with `building` set, Retrieve
  and Chat with rag answer UNAVAILABLE with a message saying so, and the same check that
  follows re-ingests loads it on the first request after the ingest publishes it, so the
  server never needs a restart and never waits at start-up for an index.
- `version` (the index's content hash) is exposed with every result, so a response cache
  can key on it and is invalidated exactly when the collection's content changes.
- Errors are `RequestError`s with the status codes of the API: no collection at all or an
  unknown name is NOT_FOUND, bad k or weights INVALID_ARGUMENT (see backend/validation.py),
  a collection still being built UNAVAILABLE.
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
    validate_retrieval,
    validate_text,
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

    version: str  # the index version the sources come from
    sources: list[Source]


class Collection:
    def __init__(self, name: str, index_dir: Path, embedder: Embedder) -> None:
        self.name = name
        self.index_dir = Path(index_dir)
        self.embedder = embedder
        self._lock = threading.Lock()
        published = current_folder(self.index_dir) is not None
        self._snapshot: IndexSnapshot | None = open_index(self.index_dir) if published else None

    def _latest(self) -> IndexSnapshot | None:
        """The current version, loading it first if an ingest has published a new one (or
        the first one); None while no version has been published."""
        folder = current_folder(self.index_dir)
        loaded = self._snapshot
        if folder is not None and (loaded is None or folder != loaded.folder):
            with self._lock:
                if self._snapshot is None or folder != self._snapshot.folder:
                    snapshot = open_index(self.index_dir)
                    before = self._snapshot.version if self._snapshot else "(being built)"
                    log.info("collection %s: version %s -> %s", self.name, before, snapshot.version)
                    self._snapshot = snapshot
        return self._snapshot

    @property
    def building(self) -> bool:
        return self._latest() is None

    def building_message(self) -> str:
        return (
            f"collection {self.name} is still being built: its index has not been published "
            "yet. The server serves it as soon as the ingest finishes; ask without documents "
            "meanwhile, or retry later"
        )

    @property
    def snapshot(self) -> IndexSnapshot:
        """The current version; UNAVAILABLE while the collection is being built."""
        snapshot = self._latest()
        if snapshot is None:
            raise RequestError(grpc.StatusCode.UNAVAILABLE, self.building_message())
        return snapshot

    def search(self, query: str, params: RetrievalParams) -> RetrievedSources:
        snapshot = self.snapshot
        hits = HybridRetriever(snapshot, self.embedder).search(
            query, params.k, params.dense_weight, params.lexical_weight
        )
        sources = [Source(h.chunk, h.score, snapshot.url_of(h.chunk)) for h in hits]
        return RetrievedSources(snapshot.version, sources)

    def describe(self, is_default: bool) -> chat_pb2.Collection:
        snapshot = self._latest()
        if snapshot is None:
            return chat_pb2.Collection(
                name=self.name,
                is_default=is_default,
                building=True,
                detail=self.building_message(),
            )
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
                collection = Collection(name, Path(spec.index), embedder)
                self.collections[name] = collection
                if collection.building:
                    log.warning(
                        "collection %s: no index published in %s yet (being built); it "
                        "answers UNAVAILABLE until an ingest publishes one",
                        name, spec.index,
                    )  # fmt: skip
                else:
                    log.info("collection %s: version %s", name, collection.snapshot.version)
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
        query = validate_text(request.query, "query")
        params = validate_retrieval(request, DEFAULT_RETRIEVE_K)
        return self.get(params.collection, "collection").search(query, params)

    def for_chat(self, rag: chat_pb2.RagOptions) -> ChatRetrieval | None:
        """The retrieval a Chat call asks for, validated before any other work (None when
        `rag.enabled` is off): bad options or an unknown collection fail the call early."""
        if not rag.enabled:
            return None
        params = validate_retrieval(rag, DEFAULT_CHAT_K, prefix="rag.")
        collection = self.get(params.collection, "rag")
        if collection.building:
            raise RequestError(grpc.StatusCode.UNAVAILABLE, collection.building_message())
        return ChatRetrieval(collection, params)


@dataclass(frozen=True)
class ChatRetrieval:
    collection: Collection
    params: RetrievalParams

    def search(self, messages: list[dict[str, str]]) -> RetrievedSources:
        """Search with the last message, the user's (validation guarantees it)."""
        return self.collection.search(messages[-1]["content"], self.params)
