"""The response cache: a deterministic request answered again replays the stored stream.

Design decisions:
- Only deterministic requests are cached: greedy decoding (temperature 0) or a fixed seed.
  Anything else would freeze one sample of a distribution the client asked to sample.
- The key is a SHA-256 over a canonical JSON of what determines the reply: the model, the
  messages the model sees (after input redaction), every sampling field, the stop strings
  and the retrieval collection's version ("" without retrieval), so re-indexing a
  collection makes its old answers unreachable instead of stale.
- What is stored is what was streamed after the output guardrails (the deltas, and the
  output guardrail events among them), plus the finish reason and token counts. Only
  complete replies are stored: a cancelled or blocked stream is not.
- Bounded three ways: entries, total bytes (text plus a fixed per-entry overhead) and a
  TTL; least recently used entries go first. A small OrderedDict does this: cachetools
  bounds either count or size, not both, and is not thread-safe without a lock anyway.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass

from backend.sampling import SamplingConfig

_ENTRY_OVERHEAD = 256  # bytes charged per entry for the key and bookkeeping


@dataclass(frozen=True)
class CacheConfig:
    max_entries: int = 1024  # 0 disables the cache
    max_bytes: int = 64 * 1024 * 1024
    ttl_seconds: float = 3600.0


@dataclass(frozen=True)
class CachedReply:
    events: tuple[bytes, ...]  # serialized ChatEvents: deltas and output guardrail events
    finish_reason: int
    completion_tokens: int

    @property
    def size(self) -> int:
        return _ENTRY_OVERHEAD + sum(len(e) for e in self.events)


def is_deterministic(sampling: SamplingConfig) -> bool:
    return sampling.temperature == 0.0 or sampling.seed is not None


def cache_key(
    model: str,
    messages: list[dict[str, str]],
    sampling: SamplingConfig,
    stop: list[str],
    collection_version: str,
) -> str:
    payload = {
        "model": model,
        "messages": messages,
        "sampling": asdict(sampling),
        "stop": stop,
        "collection_version": collection_version,
    }
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseCache:
    def __init__(self, config: CacheConfig, clock=time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, CachedReply]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.config.max_entries > 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def get(self, key: str) -> CachedReply | None:
        with self._lock:
            item = self._entries.get(key)
            if item is None:
                return None
            stored_at, reply = item
            if self._clock() - stored_at > self.config.ttl_seconds:
                self._remove(key)
                return None
            self._entries.move_to_end(key)
            return reply

    def put(self, key: str, reply: CachedReply) -> None:
        if not self.enabled or reply.size > self.config.max_bytes:
            return
        with self._lock:
            if key in self._entries:
                self._remove(key)
            self._entries[key] = (self._clock(), reply)
            self._bytes += reply.size
            while len(self._entries) > self.config.max_entries or (
                self._bytes > self.config.max_bytes
            ):
                self._remove(next(iter(self._entries)))

    def clear(self) -> None:
        """Forget every entry (the models behind them were reloaded or removed)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _remove(self, key: str) -> None:
        _, reply = self._entries.pop(key)
        self._bytes -= reply.size
