"""docs-qa: answer held-out documentation questions; token F1, ROUGE-L and exact match.

Design decisions:
- Questions come from the one question generator, test split only (see corpus_data); the
  reference is the span of the page the generator cut, so scores measure recall of the
  documentation, not style.
- The prompt is the bare question as one user message, no system prompt and greedy
  decoding: what a fine-tune on the generator's train split learns to answer, and the same
  for every model, so base and fine-tuned compare on equal terms. `options["sampling"]`
  (the `--sampling` flag) decodes otherwise, to measure a model's default sampling.
- `repeats` is the share of repeated word 3-grams of each answer: decoding loops show
  there even when the answer's first sentence scores well.
- An item fails when its token F1 is below `pass_f1` (default 0.5): the failures view
  then lists answers that miss most of the reference, the useful ones to read.
"""

from __future__ import annotations

from evals.results import MetricSpec, Row
from evals.scoring import exact_match, repeated_trigrams, rouge_l, token_f1
from evals.suites.base import Item, Suite, SuiteConfig
from evals.suites.corpus_data import seeded_order, test_questions
from evals.targets import Target

DEFAULT_MAX_TOKENS = 96
PASS_F1 = 0.5


class DocsQA(Suite):
    name = "docs-qa"
    version = "1"
    description = "held-out documentation questions: token F1, ROUGE-L, exact match"
    default_size = 10
    metrics = [
        MetricSpec("f1", "mean", "f1", "token F1 against the reference (SQuAD-style)"),
        MetricSpec("rouge_l", "mean", "rouge_l", "ROUGE-L F-measure against the reference"),
        MetricSpec("exact_match", "mean", "exact_match", "normalised answer equals reference"),
        MetricSpec(
            "repeats", "mean", "repeats", "share of repeated word 3-grams (decoding loops)",
            higher_is_better=False,
        ),
    ]  # fmt: skip

    def all_items(self, config: SuiteConfig) -> list[Item]:
        questions = seeded_order(test_questions(config.corpus), config.seed)
        return [
            Item(
                q.id,
                {
                    "question": q.question,
                    "answer": q.answer,
                    "kind": q.kind,
                    "path": q.path,
                    "anchor": q.anchor,
                },
            )
            for q in questions
        ]

    def settings(self, config: SuiteConfig) -> dict:
        return {
            **super().settings(config),
            "max_tokens": self.max_tokens(config),
            "pass_f1": config.options.get("pass_f1", PASS_F1),
            "sampling": config.options.get("sampling", {"temperature": 0.0}),
        }

    def max_tokens(self, config: SuiteConfig) -> int:
        return config.max_tokens or DEFAULT_MAX_TOKENS

    def run_item(self, item: Item, target: Target, config: SuiteConfig) -> Row:
        question, reference = item.data["question"], item.data["answer"]
        answer = target.chat(
            [{"role": "user", "content": question}],
            self.max_tokens(config),
            config.options.get("sampling"),
        )
        f1 = token_f1(answer.text, reference)
        return Row(
            id=item.id,
            input=question,
            reference=reference,
            output=answer.text,
            scores={
                "f1": f1,
                "rouge_l": rouge_l(answer.text, reference),
                "exact_match": exact_match(answer.text, reference),
                "repeats": repeated_trigrams([answer.text]),
            },
            passed=f1 >= config.options.get("pass_f1", PASS_F1),
            extra={
                "kind": item.data["kind"],
                "source": f"{item.data['path']}#{item.data['anchor']}",
                "finish": answer.finish_reason,
                "tokens": answer.completion_tokens,
            },
        )
