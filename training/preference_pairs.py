"""Preference pairs for DPO, built from the project's own data: grounded, correctly cited
documentation answers over ungrounded or wrongly cited ones, and safe refusals over
compliance with attacks.

Design decisions:
- Docs pairs come from the corpus's question generator (training/questions.py), train
  split for training pairs and val split for evaluation pairs, so no test page (what
  docs-qa and rag-qa measure) is ever seen. The prompt is the retrieval-augmented prompt
  the server sends (training/data/preference.yaml holds its wording; a test checks it
  against the server's): the question's own section as one numbered source among
  distractor sections of other pages, at a seeded position so the model learns to cite
  the source that holds the answer, not "always [1]".
- The chosen answer is the reference answer followed by the right `[n]`. The rejected
  one cycles through three failures, each isolating one thing to unlearn: the same
  answer with a wrong `[m]` (wrong citation), the same answer with no marker (uncited),
  and a distractor's first sentence cited as `[m]` (an answer from the wrong page).
  Using the reference text on both sides keeps the preference about grounding and
  citation rather than wording.
- Safety pairs: attacks (label 1) of the guardrail classifier's generated set
  (training/guard_data.py), as the bare user message; chosen a refusal, rejected a
  compliant opening, both from the data file. They are a share of the pairs
  (`safety_share`) so a DPO run keeps refusing while it learns to cite.
- Rows are TRL's conversational preference format (`prompt`, `chosen`, `rejected` as
  message lists, plus `kind`), so `DPOTrainer` applies the model's own chat template.
- Every choice is seeded: the same arguments give the same pairs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from chatforge.corpus_files import CorpusError, Document, QAPair, load_documents, load_questions
from training.errors import TrainingError

DATA_FILE = Path(__file__).resolve().parent / "data" / "preference.yaml"
REJECTED_KINDS = ("wrong-citation", "uncited", "wrong-page")


@dataclass(frozen=True)
class Source:
    heading: str  # "Page — Section", as the server labels a chunk
    path: str
    text: str


@cache
def preference_data() -> dict:
    return yaml.safe_load(DATA_FILE.read_text())


def rag_messages(question: str, sources: list[Source]) -> list[dict[str, str]]:
    """The system and user messages the server sends for `question` with `sources`."""
    prompt = preference_data()["rag_prompt"]
    entries = [
        f"[{n}] {s.heading} ({s.path})\n{s.text.replace('</sources>', '</ sources>')}"
        for n, s in enumerate(sources, 1)
    ]
    body = "\n\n".join(entries)
    block = f"{prompt['sources_header']}\n<sources>\n{body}\n</sources>"
    return [
        {"role": "system", "content": prompt["instruction"]},
        {"role": "user", "content": f"{block}\n\nQuestion: {question}\n{prompt['reminder']}"},
    ]


def _sections(documents: list[Document], max_chars: int) -> dict[tuple[str, str], Source]:
    """(path, anchor) -> the section as a source, its text cut to `max_chars`."""
    found = {}
    for doc in documents:
        for section in doc.sections:
            heading = doc.title
            if section.title and section.title != doc.title:
                heading = f"{doc.title} — {section.title}" if doc.title else section.title
            text = " ".join(section.text.split())[:max_chars]
            if text:
                found[(doc.path, section.anchor)] = Source(heading, doc.path, text)
    return found


def _first_sentence(text: str) -> str:
    head = text.split(". ")[0].strip()
    return head if head.endswith(".") else head + "."


def docs_pairs(
    questions: list[QAPair],
    sections: dict[tuple[str, str], Source],
    n_sources: int,
    rng: random.Random,
) -> list[dict]:
    pool = list(sections.values())
    pairs = []
    for number, q in enumerate(questions):
        own = sections.get((q.path, q.anchor))
        others = [s for s in pool if s.path != q.path]
        if own is None or len(others) < n_sources - 1:
            continue
        sources = rng.sample(others, n_sources - 1)
        right = rng.randrange(n_sources)
        sources.insert(right, own)
        wrong = rng.choice([i for i in range(n_sources) if i != right])
        kind = REJECTED_KINDS[number % len(REJECTED_KINDS)]
        rejected = {
            "wrong-citation": f"{q.answer} [{wrong + 1}]",
            "uncited": q.answer,
            "wrong-page": f"{_first_sentence(sources[wrong].text)} [{wrong + 1}]",
        }[kind]
        pairs.append(
            {
                "prompt": rag_messages(q.question, sources),
                "chosen": [{"role": "assistant", "content": f"{q.answer} [{right + 1}]"}],
                "rejected": [{"role": "assistant", "content": rejected}],
                "kind": f"docs/{kind}",
            }
        )
    return pairs


def safety_pairs(rng: random.Random, seed: int) -> list[dict]:
    """One pair per attack of the guardrail set, in a seeded order."""
    from training.guard_data import build_examples

    data = preference_data()
    attacks = [e.text for e in build_examples(seed=seed, n_per_family=8) if e.label == 1]
    rng.shuffle(attacks)
    return [
        {
            "prompt": [{"role": "user", "content": text}],
            "chosen": [{"role": "assistant", "content": rng.choice(data["refusals"])}],
            "rejected": [{"role": "assistant", "content": rng.choice(data["compliance"])}],
            "kind": "safety",
        }
        for text in attacks
    ]


@dataclass
class PairSettings:
    max_pairs: int = 96  # training pairs, docs and safety together
    max_eval_pairs: int = 16
    safety_share: float = 0.25
    n_sources: int = 3  # numbered sources in each docs prompt
    source_chars: int = 400  # each source's text is cut to this
    seed: int = 0

    def check(self) -> None:
        problems = []
        if self.max_pairs < 2 or self.max_eval_pairs < 1:
            problems.append("--max-pairs must be at least 2 and --max-eval-pairs at least 1")
        if not 0 <= self.safety_share < 1:
            problems.append(f"--safety-share must be in [0, 1) (got {self.safety_share})")
        if self.n_sources < 2:
            problems.append(f"--sources must be at least 2 (got {self.n_sources})")
        if self.source_chars < 50:
            problems.append(f"--source-chars must be at least 50 (got {self.source_chars})")
        if problems:
            raise TrainingError("; ".join(problems))


def build_pairs(corpus: Path | str, settings: PairSettings) -> dict[str, list[dict]]:
    """`{"train": [...], "val": [...]}` preference rows (see the module docstring)."""
    settings.check()
    try:
        documents = load_documents(corpus)
        questions = {s: load_questions(corpus, s) for s in ("train", "val")}
    except CorpusError as error:
        raise TrainingError(str(error)) from None
    sections = _sections(documents, settings.source_chars)
    rng = random.Random(settings.seed)
    safety = safety_pairs(rng, settings.seed)  # train takes the first, val the next ones
    out = {}
    for split, limit in (("train", settings.max_pairs), ("val", settings.max_eval_pairs)):
        n_safety = round(limit * settings.safety_share)
        chosen = questions[split][:]
        rng.shuffle(chosen)
        docs = docs_pairs(chosen, sections, settings.n_sources, rng)[: limit - n_safety]
        rows = docs + safety[:n_safety]
        safety = safety[n_safety:]
        rng.shuffle(rows)
        if not docs:
            raise TrainingError(
                f"{corpus}: no {split} question has a section to ground it and "
                f"{settings.n_sources - 1} sections of other pages to contrast it with"
            )
        out[split] = rows
    return out
