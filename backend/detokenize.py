"""Streaming text from token ids: incremental detokenization and stop strings.

Design decisions:
- A delta never splits a character and never carries a U+FFFD the model did not produce
  whole. Byte-level BPE tokens can end in the middle of a UTF-8 character, so for a
  byte-level tokenizer the detokenizer works on bytes (`TextCodec.token_bytes`) through
  Python's incremental UTF-8 decoder: it emits each character once its last byte
  arrives, so a real U+FFFD (bytes EF BF BD) passes like any other character. Bytes that
  can never form a character (a model's invalid sequence), and the start of a character
  still incomplete when the stream ends (at max_tokens, at cancel), are dropped rather
  than shown as U+FFFD: `decode` cannot tell those from a real U+FFFD, bytes can.
- Tokenizers that are not byte-level (SentencePiece and the like) fall back to decoding
  a short window of recent tokens and emitting only text that is complete (not ending
  in U+FFFD) and new, the prefix/read-offset scheme of text-generation servers. There a
  trailing U+FFFD at the end of the stream is taken for an incomplete character and
  dropped, since text alone cannot tell it apart. Either way each step is O(1) in the
  answer's length.
- Stop strings are matched on text, after detokenization, so a cut always falls between
  whole characters: the matcher holds back only the tail that could still be the start
  of a stop string, the stream stays incremental and a stop string is never shown.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from typing import Protocol


class Codec(Protocol):
    def decode(self, ids: Sequence[int], skip_special_tokens: bool = ...) -> str: ...

    def token_bytes(self) -> list[bytes] | None: ...


class IncrementalDetokenizer:
    """Token ids in, whole characters out: `add` each generated id, `flush` at the end."""

    def __init__(self, codec: Codec) -> None:
        table = codec.token_bytes()
        self._stream = _TextWindow(codec) if table is None else _Utf8Stream(table)

    def add(self, token_id: int) -> str:
        """Add one token; return the newly completed text (possibly empty)."""
        return self._stream.add(token_id)

    def flush(self) -> str:
        """The end of the stream: whatever complete text is left, never a cut character."""
        return self._stream.flush()


class _Utf8Stream:
    def __init__(self, table: list[bytes]) -> None:
        self._table = table
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="ignore")

    def add(self, token_id: int) -> str:
        # An id past the tokenizer's vocabulary (a model's padded embedding rows) decodes
        # to nothing, as `decode` skips it.
        piece = self._table[token_id] if 0 <= token_id < len(self._table) else b""
        return self._utf8.decode(piece)

    def flush(self) -> str:
        return self._utf8.decode(b"", final=True)


class _TextWindow:
    def __init__(self, codec: Codec) -> None:
        self._codec = codec
        self._ids: list[int] = []
        self._prefix_offset = 0
        self._read_offset = 0

    def _window(self) -> tuple[str, str]:
        decode = self._codec.decode
        prefix = decode(self._ids[self._prefix_offset : self._read_offset])
        return prefix, decode(self._ids[self._prefix_offset :])

    def add(self, token_id: int) -> str:
        self._ids.append(token_id)
        prefix, full = self._window()
        if len(full) <= len(prefix) or full.endswith("\ufffd"):
            return ""
        self._prefix_offset = self._read_offset
        self._read_offset = len(self._ids)
        return full[len(prefix) :]

    def flush(self) -> str:
        prefix, full = self._window()
        self._prefix_offset = self._read_offset = len(self._ids)
        return full[len(prefix) :].rstrip("\ufffd")


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
