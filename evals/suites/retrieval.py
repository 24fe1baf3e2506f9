"""retrieval: does the page that answers a question come back in the top k?

Recall@1/5/10 and MRR for BM25 alone, dense alone and hybrid (reciprocal rank fusion of
both), through the server's `Retrieve` RPC, on hand-written questions
(evals/data/retrieval_questions.jsonl) and on questions the project's one question
generator made for the corpus's held-out test pages.

Design decisions:
- Relevance is page-level: a result counts when its chunk comes from one of the pages the
  question names. A question's answer can sit in any section of a page, and a citation
  that opens the right page is what a reader needs.
- The three modes are one `Retrieve` call each with weights (0, 1), (1, 0) and (1, 1), so
  "hybrid beats both" compares exactly what the server serves, embedding included.
- Items: the hand-written questions first, in file order; the default size is exactly
  them, the set the target is about (hybrid recall@5 >= 0.85). Beyond them (`--size`,
  `--full`) come the generated questions of the corpus's test split (`--corpus`), in a
  seeded order, so a run of any size is a prefix of a larger one.
- Each row scores its own group (`hand_...` or `generated_...`): generated questions repeat
  page and section titles, which flatters BM25, so the two groups are never pooled. Every
  aggregate is the mean of a per-row score (hit within k: 1 or 0; 1/rank or 0).
- The collection is the server's (`--collection`, default its default one); its name and
  version go into the settings, so a run is tied to the index it measured, and resuming it
  against a re-ingested index is refused. A collection still being built is an error.
- Hand-written items naming a page the corpus does not have are an error (a typo would
  silently count as a miss otherwise); pass the collection's own corpus with `--corpus`
  (an ingest writes it to INDEX_DIR/corpus) when it is not the default one.
- `load_items` and `generated_items` are importable: bench/retrieval.py times the same
  questions.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatforge.corpus_files import CorpusError, load_documents, load_questions
from evals.errors import EvalError
from evals.results import MetricSpec, Row
from evals.suites.base import Item, Suite, SuiteConfig
from evals.suites.corpus_data import SPLIT
from evals.targets import LiveTarget

HAND_WRITTEN = Path(__file__).resolve().parent.parent / "data" / "retrieval_questions.jsonl"
MODES: dict[str, tuple[float, float]] = {  # name -> (dense weight, lexical weight)
    "hybrid": (1.0, 1.0),
    "dense": (1.0, 0.0),
    "bm25": (0.0, 1.0),
}
KS = (1, 5, 10)
GROUPS = {"hand": "hand-written questions", "generated": "generated questions (test split)"}
PASS_K = 5  # an item passes when hybrid ranks a relevant page within this


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    paths: tuple[str, ...]  # pages that answer it
    origin: str  # "hand" or "generated"


def load_items(path: Path | str = HAND_WRITTEN) -> list[EvalItem]:
    """Hand-written items: one JSON object per line with id, question and paths."""
    path = Path(path)
    if not path.is_file():
        raise EvalError(f"{path}: no such questions file")
    items = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            paths = row["paths"]
            if not isinstance(paths, list) or not paths or not row["question"].strip():
                raise ValueError("`question` must be text and `paths` a non-empty list")
            items.append(EvalItem(str(row["id"]), row["question"], tuple(paths), "hand"))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EvalError(
                f'{path}:{number}: expected {{"id", "question", "paths": [...]}} ({exc})'
            ) from None
    return items


def generated_items(
    corpus_dir: Path, split: str = SPLIT, limit: int | None = None, seed: int = 0
) -> list[EvalItem]:
    """A seeded sample of the corpus's generated questions (`split` "all": every split)."""
    try:
        pairs = load_questions(corpus_dir, None if split == "all" else split)
    except CorpusError as error:
        raise EvalError(str(error)) from None
    random.Random(seed).shuffle(pairs)
    return [EvalItem(p.id, p.question, (p.path,), "generated") for p in pairs[:limit]]


def check_paths(items: list[EvalItem], known_paths: set[str], where: Path) -> None:
    for item in items:
        missing = [p for p in item.paths if p not in known_paths]
        if missing:
            raise EvalError(
                f"item {item.id}: the corpus {where} has no page {', '.join(missing)}; fix "
                "the path, or pass the collection's own corpus with --corpus INDEX_DIR/corpus"
            )


def first_relevant_rank(result_paths: list[str], paths: tuple[str, ...]) -> int | None:
    """1-based rank of the first result from a relevant page, None if there is none."""
    return next((i for i, p in enumerate(result_paths, 1) if p in paths), None)


def _metrics() -> list[MetricSpec]:
    specs = []
    for group, described in GROUPS.items():
        for mode in MODES:
            for k in KS:
                name, about = f"{group}_{mode}_recall@{k}", f"a relevant page in the top {k}"
                specs.append(MetricSpec(name, "mean", name, f"{mode}: {about}, {described}"))
            name, about = f"{group}_{mode}_mrr", "1/rank of the first relevant page (0 if none)"
            specs.append(MetricSpec(name, "mean", name, f"{mode}: {about}, {described}"))
    return specs


class Retrieval(Suite):
    name = "retrieval"
    version = "1"
    description = "recall@1/5/10 and MRR of BM25, dense and hybrid retrieval (Retrieve RPC)"
    default_size = 50  # the hand-written questions
    live_only = True
    metrics = _metrics()

    def __init__(self) -> None:
        self.collection = ""
        self.collection_version = ""

    def check_target(self, target: LiveTarget, config: SuiteConfig) -> None:
        super().check_target(target, config)
        collections = target.client.list_collections().collections
        if not collections:
            raise EvalError(
                f"the server at {target.address} has no retrieval collection; serve one with "
                "`python -m backend serve --collection NAME=INDEX_DIR`"
            )
        wanted = config.options.get("collection") or next(
            (c.name for c in collections if c.is_default), collections[0].name
        )
        found = {c.name: c for c in collections}.get(wanted)
        if found is None:
            raise EvalError(
                f"--collection {wanted!r}: the server has {', '.join(c.name for c in collections)}"
            )
        if found.building:
            raise EvalError(f"{found.detail}; run the suite once it is built")
        self.collection, self.collection_version = found.name, found.version

    def _groups(self, config: SuiteConfig) -> tuple[list[EvalItem], list[EvalItem] | None]:
        """The hand-written items, and the generated ones (None without a corpus)."""
        hand = load_items(config.options.get("questions", HAND_WRITTEN))
        if not (config.corpus / "questions.jsonl").is_file():
            return hand, None
        try:
            known = {d.path for d in load_documents(config.corpus)}
        except CorpusError as error:
            raise EvalError(str(error)) from None
        check_paths(hand, known, config.corpus)
        return hand, generated_items(config.corpus, SPLIT, seed=config.seed)

    def all_items(self, config: SuiteConfig) -> list[Item]:
        hand, generated = self._groups(config)
        return [
            Item(i.id, {"question": i.question, "paths": list(i.paths), "origin": i.origin})
            for i in hand + (generated or [])
        ]

    def items(self, config: SuiteConfig) -> list[Item]:
        questions = config.corpus / "questions.jsonl"
        if not questions.is_file():
            hand = len(load_items(config.options.get("questions", HAND_WRITTEN)))
            if config.full or (config.size or 0) > hand:
                raise EvalError(
                    f"only the {hand} hand-written questions are there: the generated ones "
                    f"come from {questions}; build the corpus with `python -m training data "
                    "--source pydocs` or pass --corpus DIR"
                )
        return super().items(config)

    def settings(self, config: SuiteConfig) -> dict[str, Any]:
        return {
            **config.to_json(),
            "collection": self.collection,
            "collection_version": self.collection_version,
        }

    def run_item(self, item: Item, target: LiveTarget, config: SuiteConfig) -> Row:
        question, paths = item.data["question"], tuple(item.data["paths"])
        group = item.data["origin"]
        ranks: dict[str, int | None] = {}
        top: dict[str, list[str]] = {}
        for mode, (dense, lexical) in MODES.items():
            chunks = target.client.retrieve(
                question, self.collection, max(KS), dense_weight=dense, lexical_weight=lexical
            ).chunks
            top[mode] = [c.source_path for c in chunks]
            ranks[mode] = first_relevant_rank(top[mode], paths)
        scores = {}
        for mode, rank in ranks.items():
            for k in KS:
                scores[f"{group}_{mode}_recall@{k}"] = float(rank is not None and rank <= k)
            scores[f"{group}_{mode}_mrr"] = 1.0 / rank if rank else 0.0
        hybrid = ranks["hybrid"]
        return Row(
            id=item.id,
            input=question,
            reference=", ".join(paths),
            output="; ".join(f"{m} rank {ranks[m] or '-'}" for m in MODES)
            + f" | hybrid top {PASS_K}: {', '.join(top['hybrid'][:PASS_K])}",
            scores=scores,
            passed=hybrid is not None and hybrid <= PASS_K,
            extra={"origin": group, "ranks": ranks},
        )
