"""The corpus folder contract: the records `python -m training data` writes and everyone reads.

A corpus folder holds `documents.jsonl` (one page per line: id, title, path, split, text,
sections) and `questions.jsonl` (question, answer, source page and section, split), plus a
manifest. Training writes it (`training.corpus`, `training.questions`); the evals, the
retrieval ingest and fine-tuning read it.

Design decisions:
- The record types and their readers live here, apart from the code that builds them, so
  the eval suites read a corpus without importing training (the architecture's rule
  "evals read folders and corpora, not training code") and the UI image needs no parser.
- A missing file or a malformed line is a `CorpusError` naming the file, the line and the
  command that builds the folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

DOCUMENTS_FILE = "documents.jsonl"
QUESTIONS_FILE = "questions.jsonl"
SPLITS = ("train", "val", "test")


class CorpusError(ValueError):
    """A corpus folder that is missing or malformed; the message says how to build it."""


@dataclass
class Section:
    title: str
    anchor: str
    level: int
    text: str


@dataclass
class Document:
    id: str
    title: str
    path: str
    split: str
    text: str
    sections: list[Section] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict) -> Document:
        sections = [Section(**s) for s in data.get("sections", [])]
        return cls(**{**data, "sections": sections})


@dataclass
class QAPair:
    id: str
    question: str
    answer: str
    doc_id: str
    path: str
    anchor: str
    title: str
    split: str
    kind: str


def _records(path: Path, split: str | None, parse, what: str) -> list:
    if split not in (None, *SPLITS):
        raise CorpusError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    if not path.is_file():
        raise CorpusError(
            f"{path} not found: build the corpus with "
            "`python -m training data --source pydocs|shakespeare|PATH|hf:NAME`"
        )
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            record = parse(json.loads(line))
        except (ValueError, TypeError) as exc:
            raise CorpusError(f"{path}:{number}: not a {what} record ({exc})") from None
        if split is None or record.split == split:
            records.append(record)
    return records


def load_documents(folder: Path | str, split: str | None = None) -> list[Document]:
    """The documents of a corpus folder (optionally one split's), in file order."""
    return _records(Path(folder) / DOCUMENTS_FILE, split, Document.from_json, "document")


def load_questions(folder: Path | str, split: str | None = None) -> list[QAPair]:
    """The questions of a corpus folder, optionally only one split's."""
    return _records(Path(folder) / QUESTIONS_FILE, split, lambda d: QAPair(**d), "question")
