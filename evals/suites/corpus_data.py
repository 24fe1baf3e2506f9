"""The eval suites' view of the corpus: the test split only, in a seeded order.

Design decisions:
- docs-qa, choice and perplexity draw on the one corpus and question generator (the corpus
  contract) and only on its `test` split, so no page they measure on was ever trained on.
- Items are shuffled with a seeded RNG once and then cut to size, so a small run's items
  are a prefix of a larger run's and runs of any size on two models pair item by item.
"""

from __future__ import annotations

import random
from pathlib import Path

from chatforge.corpus_files import CorpusError, Document, QAPair, load_documents, load_questions
from evals.errors import EvalError

SPLIT = "test"


def _no_corpus(folder: Path, error: CorpusError) -> EvalError:
    return EvalError(
        f"{error}\n(the eval suites read the corpus's test split from {folder}; build it with "
        "`python -m training data --source pydocs` or pass --corpus DIR)"
    )


def test_questions(folder: Path) -> list[QAPair]:
    try:
        questions = load_questions(folder, split=SPLIT)
    except CorpusError as error:
        raise _no_corpus(folder, error) from None
    if not questions:
        raise EvalError(f"{folder}: the corpus has no questions in its {SPLIT} split")
    return questions


def test_documents(folder: Path) -> list[Document]:
    try:
        documents = load_documents(folder, split=SPLIT)
    except CorpusError as error:
        raise _no_corpus(folder, error) from None
    if not documents:
        raise EvalError(f"{folder}: the corpus has no documents in its {SPLIT} split")
    return documents


def seeded_order(items: list, seed: int) -> list:
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    return shuffled
