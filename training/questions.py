"""The one question generator: (question, answer, source page) triples from corpus documents.

The from-scratch SFT set, the LoRA fine-tuning set, the docs-qa and choice eval suites and
the retrieval eval all read `questions.jsonl`, written by this module next to the
documents, so every consumer sees the same questions with the same train/val/test split
(a question inherits its document's split) and no held-out page leaks into training.

Design decisions:
- Answers are spans cut out of the section text (never rewritten), so every answer is a
  substring of its document's text and a grader can check grounding by string search.
- An answer is the lead of a section: whole sentences of its first prose paragraph, up to
  about 350 characters. A section whose first sentence is longer, or that has no prose
  paragraph (only code), gives no question rather than a truncated answer.
- Three kinds: `api` (a Sphinx API entry such as `json.dumps`: "What does json.dumps()
  do?" answered by its description), `page` (the opening section of a page) and `section`
  (any other heading). The phrasing is picked from a few templates by a hash of the
  question id, so the set is varied yet byte-for-byte reproducible.
- `title` is the page title; `path` plus `anchor` point at the exact section to cite.
"""

from __future__ import annotations

import hashlib
import re

from chatforge.corpus_files import QAPair

MAX_ANSWER = 350
MIN_ANSWER = 30
_SENTENCE_END = re.compile(r"[.!?](?=\s+[A-Z0-9`\"'(]|\s*$)")
_API_NAME = re.compile(r"[A-Za-z_][\w.]*")

TEMPLATES = {
    "api": (
        "What does {name} do?",
        "What is {name} used for?",
        "Can you explain {name}?",
        "How would you describe {name} in Python?",
    ),
    "page": (
        "What is {title} about?",
        "What does the page '{title}' cover?",
        "Give me an overview of {title}.",
    ),
    "section": (
        "In '{title}', what does the section '{section}' explain?",
        "What does '{title}' say about {section}?",
        "Tell me about {section} ({title}).",
    ),
}


def _lead(block: str) -> str | None:
    """Whole sentences from the start of `block`, at most MAX_ANSWER characters."""
    end = None
    for match in _SENTENCE_END.finditer(block):
        if match.end() > MAX_ANSWER:
            break
        end = match.end()
    if end is None or end < MIN_ANSWER:
        return None
    return block[:end]


# Sphinx annotation lines that open many API entries but describe no behaviour.
_NOT_PROSE = (">>>", "$ ", "...", "#", "Return value:", "Part of the ", "Availability:")
_NOT_PROSE += ("New in version", "Changed in version", "Deprecated since", "Raises an auditing")


def _is_prose(block: str) -> bool:
    return not block.startswith(_NOT_PROSE) and " " in block


def _is_api(section) -> bool:
    return (
        section.anchor in (section.title, f"c.{section.title}")
        and _API_NAME.fullmatch(section.anchor) is not None
        and "\n\n" in section.text
    )


def _pick(kind: str, qid: str) -> str:
    options = TEMPLATES[kind]
    return options[int(hashlib.sha256(qid.encode()).hexdigest(), 16) % len(options)]


def questions_for_document(doc) -> list[QAPair]:
    pairs: list[QAPair] = []
    used: set[str] = set()
    for index, section in enumerate(doc.sections):
        blocks = section.text.split("\n\n")
        if _is_api(section):
            kind = "api"
            callable_ = "(" in blocks[0]
            name = section.title + ("()" if callable_ else "")
            blocks = blocks[1:]
        else:
            kind = "page" if index == 0 else "section"
            name = section.title
        prose = next((b for b in blocks if _is_prose(b)), None)
        answer = _lead(prose) if prose else None
        if not answer or not name:
            continue
        qid = f"{doc.id}#{section.anchor or f's{index}'}"
        if qid in used:
            qid = f"{qid}-{index}"
        used.add(qid)
        question = _pick(kind, qid).format(name=name, title=doc.title, section=section.title)
        pairs.append(
            QAPair(
                id=qid,
                question=question,
                answer=answer,
                doc_id=doc.id,
                path=doc.path,
                anchor=section.anchor,
                title=doc.title,
                split=doc.split,
                kind=kind,
            )
        )
    return pairs


def generate_questions(documents) -> list[QAPair]:
    """Questions for every document, in document order."""
    return [pair for doc in documents for pair in questions_for_document(doc)]
