"""choice: multiple-choice questions about the documentation, scored by answer likelihood.

Design decisions:
- The set is made from the corpus's test split: each generated question keeps its own
  answer as the gold option and takes three distractors, the answers of other test
  questions of the same kind (an API entry against API entries) from other pages, so every
  option is a fluent documentation sentence and only knowing the page tells them apart.
  Distractors and option order come from an RNG seeded by the seed and the question id:
  an item is the same whatever the size of the run.
- Scored the way nanochat's CORE multiple-choice tasks are: the context (here the question
  as a chat prompt, the model's own template) is shared, each option is a continuation,
  and the option with the highest mean log-probability per token wins; ties are split
  (see `evals.scoring.choose`). No generation, so the score does not depend on a model's
  willingness to answer with a letter.
- Reported as accuracy and as CORE's centered accuracy, (acc - 1/k) / (1 - 1/k), which is
  0 at chance and 1 when perfect. Each item's gold and predicted letters make it a
  classification, so the confusion matrix shows any bias towards an option position.
"""

from __future__ import annotations

import random
from collections import defaultdict

from evals.results import MetricSpec, Row
from evals.scoring import choose
from evals.suites.base import Item, Suite, SuiteConfig
from evals.suites.corpus_data import seeded_order, test_questions
from evals.targets import Target

OPTIONS = 4
LETTERS = "ABCDEFGH"


class Choice(Suite):
    name = "choice"
    version = "1"
    description = "4-way multiple choice on held-out docs, by answer log-likelihood (CORE-style)"
    default_size = 16
    metrics = [
        MetricSpec("accuracy", "mean", "accuracy", "gold option has the best mean log-prob"),
        MetricSpec("centered_accuracy", "mean", "centered", "(acc - 1/k) / (1 - 1/k); 0 = chance"),
    ]

    def all_items(self, config: SuiteConfig) -> list[Item]:
        questions = test_questions(config.corpus)
        by_kind = defaultdict(list)
        for q in questions:
            by_kind[q.kind].append(q)
        items = []
        for q in questions:
            rng = random.Random(f"{config.seed}:{q.id}")
            pool = [o.answer for o in by_kind[q.kind] if o.doc_id != q.doc_id]
            if len(set(pool)) < OPTIONS - 1:  # too few of its kind: any other page's answer
                pool = [o.answer for o in questions if o.doc_id != q.doc_id]
            pool = sorted(set(pool) - {q.answer})
            if len(pool) < OPTIONS - 1:
                continue
            options = [q.answer, *rng.sample(pool, OPTIONS - 1)]
            rng.shuffle(options)
            items.append(
                Item(
                    q.id,
                    {"question": q.question, "options": options, "gold": options.index(q.answer)},
                )
            )
        return seeded_order(items, config.seed)

    def run_item(self, item: Item, target: Target, config: SuiteConfig) -> Row:
        options, gold = item.data["options"], item.data["gold"]
        question = item.data["question"]
        scored = target.score(options, messages=[{"role": "user", "content": question}])
        means = [s.logprob / s.tokens for s in scored]
        outcome = choose(means, gold)
        k = len(options)
        return Row(
            id=item.id,
            input=question + "".join(f"\n{LETTERS[i]}. {o}" for i, o in enumerate(options)),
            reference=LETTERS[gold],
            output=LETTERS[outcome.predicted],
            scores={
                "accuracy": outcome.credit,
                "centered": (outcome.credit * k - 1) / (k - 1),  # (acc - 1/k) / (1 - 1/k)
            },
            passed=outcome.credit == 1.0,
            label=LETTERS[gold],
            prediction=LETTERS[outcome.predicted],
            extra={"mean_logprobs": means, "tied": outcome.tied},
        )
