"""Split documents into chunks by their structure, within a token budget, with overlap.

Design decisions:
- Structure first: a chunk never spans two sections, so every chunk has one section
  anchor to cite. Inside a section, text is cut at paragraph boundaries, then sentence
  (or, for code, line) boundaries, and only a single over-long sentence is cut by words.
- The budget counts the embedding model's own tokens and includes the heading
  ("Page title — Section") that is prepended to the text for embedding and BM25, so no
  chunk is silently truncated by the model's 256-token window.
- Overlap is made of whole trailing sentences or lines of the previous chunk (up to
  `overlap_tokens`), never a word fragment, so a fact cut at a boundary is still whole in
  one of the two chunks.
- Token counts of the pieces are summed rather than re-counting each candidate chunk; a
  WordPiece count of joined text equals the sum of its whitespace-separated parts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass

from backend.retrieval.documents import SourceDocument

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?:;])\s+(?=[A-Z0-9\"'(`\[*])")


@dataclass(frozen=True)
class ChunkSettings:
    max_tokens: int = 192
    overlap_tokens: int = 32

    def __post_init__(self) -> None:
        if self.max_tokens < 32:
            raise ValueError(f"max_tokens: {self.max_tokens} is below the minimum of 32")
        if not 0 <= self.overlap_tokens < self.max_tokens // 2:
            raise ValueError(
                f"overlap_tokens: {self.overlap_tokens} must be in [0, max_tokens / 2)"
            )


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    source_path: str
    title: str  # the page title
    section: str  # the section title ("" when it is the page itself)
    anchor: str  # HTML id / slug of the section, "" if none
    text: str  # the chunk's own text, without the heading

    @property
    def heading(self) -> str:
        if self.section and self.section != self.title:
            return f"{self.title} — {self.section}" if self.title else self.section
        return self.title

    @property
    def indexed_text(self) -> str:
        """What is embedded and BM25-indexed: the heading gives the text its context."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Unit:
    text: str
    separator: str  # what joins it to the unit before it: "\n\n", "\n" or " "
    tokens: int


def _word_windows(text: str, budget: int, count: Callable[[str], int]) -> list[str]:
    windows, current, used = [], [], 0
    for word in text.split():
        n = count(word)
        if current and used + n > budget:
            windows.append(" ".join(current))
            current, used = [], 0
        current.append(word)
        used += n
    if current:
        windows.append(" ".join(current))
    return windows


def _units(text: str, budget: int, count: Callable[[str], int]) -> list[_Unit]:
    units: list[_Unit] = []
    for paragraph in _PARAGRAPH.split(text):
        paragraph = paragraph.strip("\n")
        if not paragraph.strip():
            continue
        n = count(paragraph)
        if n <= budget:
            units.append(_Unit(paragraph, "\n\n", n))
            continue
        pieces, joiner = _pieces(paragraph)  # code and lists split by lines
        separator = "\n\n"
        for piece in pieces:
            if not piece.strip():
                continue
            m = count(piece)
            parts = [piece] if m <= budget else _word_windows(piece, budget, count)
            for part in parts:
                units.append(_Unit(part, separator, m if len(parts) == 1 else count(part)))
                separator = joiner
    return units


def _join(units: list[_Unit]) -> str:
    return "".join(u.text if i == 0 else u.separator + u.text for i, u in enumerate(units))


def _pieces(text: str) -> tuple[list[str], str]:
    """A unit's sentences (prose) or lines (code, lists), and what joins them."""
    if "\n" in text:
        return text.split("\n"), "\n"
    return _SENTENCE.split(text), " "


def _tail(units: list[_Unit], overlap: int, count: Callable[[str], int]) -> list[_Unit]:
    """The whole trailing sentences or lines of `units` that fit in `overlap` tokens."""
    tail: list[_Unit] = []
    carried = 0
    for unit in reversed(units):
        if carried + unit.tokens <= overlap:
            tail.insert(0, unit)
            carried += unit.tokens
            continue
        pieces, joiner = _pieces(unit.text)
        taken: list[str] = []
        for piece in reversed(pieces[1:]):  # never the whole unit, which did not fit
            n = count(piece)
            if carried + n > overlap:
                break
            taken.insert(0, piece)
            carried += n
        if taken:
            tail.insert(
                0, _Unit(joiner.join(taken), unit.separator, carried - sum(u.tokens for u in tail))
            )
        break
    return tail


def _pack(units: list[_Unit], budget: int, overlap: int, count: Callable[[str], int]) -> list[str]:
    chunks: list[str] = []
    current: list[_Unit] = []
    used = 0
    for unit in units:
        if current and used + unit.tokens > budget:
            chunks.append(_join(current))
            current = _tail(current, overlap, count) if overlap else []
            while current and sum(u.tokens for u in current) + unit.tokens > budget:
                current.pop(0)
            used = sum(u.tokens for u in current)
        current.append(unit)
        used += unit.tokens
    if current:
        chunks.append(_join(current))
    return chunks


def chunk_document(
    doc: SourceDocument, settings: ChunkSettings, count: Callable[[str], int]
) -> list[Chunk]:
    """The chunks of one document, in reading order."""
    sections = [(s.title, s.anchor, s.text) for s in doc.sections if s.text.strip()]
    if not sections:
        sections = [(doc.title, "", doc.text)]
    chunks: list[Chunk] = []
    for section_title, anchor, text in sections:
        template = Chunk(doc.id, doc.path, doc.title, section_title, anchor, "")
        budget = max(16, settings.max_tokens - count(template.heading) - 1)
        overlap = min(settings.overlap_tokens, budget // 2)
        for piece in _pack(_units(text, budget, count), budget, overlap, count):
            chunks.append(Chunk(doc.id, doc.path, doc.title, section_title, anchor, piece))
    return chunks
