"""Read the corpus contract's `documents.jsonl` (written by `python -m training data`).

Design decisions:
- backend/ does not import training/, so the contract is read here from the JSON itself,
  validated with pydantic; a bad line is reported with the file, the line and the field.
- Only what retrieval needs is kept (id, title, path, text, sections); unknown keys such
  as `split` are ignored, so the contract can grow without breaking ingestion.
- A document's content hash covers everything that ends up in its chunks (title, path and
  sections), so re-ingestion can tell an unchanged document from a changed one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class IngestError(ValueError):
    """Input that cannot be ingested; the message says what is wrong and how to fix it."""


class Section(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    title: str = ""
    anchor: str = ""
    level: int = 1
    text: str


class SourceDocument(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1)
    title: str = ""
    path: str = Field(min_length=1)
    text: str
    sections: list[Section] = Field(default_factory=list)

    @property
    def content_hash(self) -> str:
        payload = json.dumps(
            [self.title, self.path, self.text, [s.model_dump() for s in self.sections]],
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode()).hexdigest()


def read_documents(path: Path | str) -> list[SourceDocument]:
    """Every document of a `documents.jsonl`, in file order; ids must be unique."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise IngestError(f"{path}: cannot read the documents ({exc})") from None
    docs: list[SourceDocument] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc = SourceDocument.model_validate_json(line)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "(line)"
            raise IngestError(
                f"{path}:{number}: {where}: {err['msg']}; each line must be a document "
                '{"id", "title", "path", "text", "sections"} as `python -m training data` '
                "writes it"
            ) from None
        if doc.id in seen:
            raise IngestError(f"{path}:{number}: id {doc.id!r} repeats line {seen[doc.id]}")
        seen[doc.id] = number
        if doc.text.strip():
            docs.append(doc)
    if not docs:
        raise IngestError(f"{path}: no documents with text")
    return docs
