"""Streaming text from token ids: incremental detokenization and stop strings.

Design decisions:
- Byte-level BPE tokens can end in the middle of a UTF-8 character. Decoding each token on
  its own would emit U+FFFD; instead the detokenizer decodes a short window of recent
  tokens and emits only the text that is complete (not ending in U+FFFD) and new, the
  prefix/read-offset scheme used by text-generation servers. Decoding the window rather
  than the whole sequence keeps each step O(1) in the answer's length.
- Stop strings are matched on text, after detokenization: the matcher holds back only the
  tail that could still be the start of a stop string, so the stream stays incremental
  and a stop string is never shown to the client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Decoder(Protocol):
    def decode(self, ids: Sequence[int], skip_special_tokens: bool = ...) -> str: ...


class IncrementalDetokenizer:
    def __init__(self, tokenizer: Decoder) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._prefix_offset = 0
        self._read_offset = 0

    def add(self, token_id: int) -> str:
        """Add one token; return the newly completed text (possibly empty)."""
        self._ids.append(token_id)
        decode = self._tokenizer.decode
        prefix = decode(
            self._ids[self._prefix_offset : self._read_offset], skip_special_tokens=True
        )
        full = decode(self._ids[self._prefix_offset :], skip_special_tokens=True)
        if len(full) <= len(prefix) or full.endswith("\ufffd"):
            return ""
        self._prefix_offset = self._read_offset
        self._read_offset = len(self._ids)
        return full[len(prefix) :]

    def flush(self) -> str:
        """Whatever is left at the end (an incomplete character decodes as U+FFFD)."""
        decode = self._tokenizer.decode
        prefix = decode(
            self._ids[self._prefix_offset : self._read_offset], skip_special_tokens=True
        )
        full = decode(self._ids[self._prefix_offset :], skip_special_tokens=True)
        self._prefix_offset = self._read_offset = len(self._ids)
        return full[len(prefix) :]


class StopMatcher:
    """Cuts a text stream at the first stop string, holding back possible partial matches."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Return the text that is safe to emit; sets `stopped` when a stop string appears."""
        if self.stopped:
            return ""
        buffer = self._held + text
        if not self._stops:
            self._held = ""
            return buffer
        hits = [i for i in (buffer.find(s) for s in self._stops) if i >= 0]
        if hits:
            self.stopped = True
            self._held = ""
            return buffer[: min(hits)]
        keep = max(self._partial_suffix(buffer, s) for s in self._stops)
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        held, self._held = self._held, ""
        return "" if self.stopped else held

    @staticmethod
    def _partial_suffix(buffer: str, stop: str) -> int:
        """Length of the longest suffix of buffer that is a proper prefix of stop."""
        for n in range(min(len(stop) - 1, len(buffer)), 0, -1):
            if buffer.endswith(stop[:n]):
                return n
        return 0
