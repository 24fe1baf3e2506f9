"""Scorers: exact match, token F1 and ROUGE-L against a reference; choice by log-likelihood;
bootstrap confidence intervals.

Design decisions:
- One normalisation for every text metric (`normalize_answer`), SQuAD's rules made
  Unicode-aware: NFKC, case-folded, every Unicode punctuation or symbol character turned into
  a space, the English articles a/an/the dropped, whitespace collapsed. SQuAD's ASCII-only
  rules would leave "café" and "cafe," unequal for the wrong reason and drop nothing in
  other scripts; with NFKC and casefold, full-width and accented forms compare as a reader
  would compare them. Letters and digits of every script are kept, so Chinese or emoji-free
  answers still have tokens.
- Empty answers follow SQuAD v2: when the normalised reference or prediction has no tokens,
  F1, ROUGE-L and exact match are 1.0 if both are empty and 0.0 otherwise.
- ROUGE-L is the `rouge-score` package (the reference implementation) fed our tokens, so
  ROUGE-L and F1 see the same words; its own tokenizer keeps ASCII letters only.
- Choice follows nanochat's CORE multiple-choice rule: the option whose continuation has the
  highest mean log-probability per token (lowest mean loss) wins. nanochat breaks ties by
  taking the first option, which rewards whatever position the gold answer sits in; here a
  tie among k best options, gold among them, earns 1/k: the expected score of a fair
  tie-break, and deterministic.
- Degenerate repetition is the share of repeated word 3-grams (`repeated_trigrams`): a
  decoding loop repeats whole phrases, so it rises towards 1 while fluent text stays
  near 0; raw words, not normalised ones, so a repeated sentence is counted as written.
- Confidence intervals are percentile bootstraps over items (scipy.stats.bootstrap), with a
  fixed seed so a results file is reproducible. The statistic is computed from resampled
  item indices, so one routine covers means, ratios of sums (bits per byte) and
  percentiles over samples pooled across items (inter-token latency).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy import stats

_ARTICLES = frozenset({"a", "an", "the"})
_SPACES = re.compile(r"\s+")
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation, symbols and articles, collapse whitespace (see module)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    return " ".join(word for word in _SPACES.split(text) if word and word not in _ARTICLES)


def answer_tokens(text: str) -> list[str]:
    normalized = normalize_answer(text)
    return normalized.split(" ") if normalized else []


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    predicted, wanted = answer_tokens(prediction), answer_tokens(reference)
    if not predicted or not wanted:
        return float(predicted == wanted)
    common = sum((Counter(predicted) & Counter(wanted)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


class _AnswerTokenizer:
    """The `tokenize(text)` interface rouge-score expects, over our normalisation."""

    def tokenize(self, text: str) -> list[str]:
        return answer_tokens(text)


@cache
def _rouge():
    from rouge_score import rouge_scorer  # imports nltk (seconds): only when first needed

    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=_AnswerTokenizer())


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (longest common subsequence of normalised tokens)."""
    predicted, wanted = answer_tokens(prediction), answer_tokens(reference)
    if not predicted or not wanted:
        return float(predicted == wanted)
    return _rouge().score(reference, prediction)["rougeL"].fmeasure


@dataclass(frozen=True)
class ChoiceOutcome:
    predicted: int  # the first of the best options
    credit: float  # 1 if gold alone is best, 1/k if gold ties with k-1 others, else 0
    tied: int  # how many options share the best score


def choose(mean_logprobs: Sequence[float], gold: int, tolerance: float = 1e-9) -> ChoiceOutcome:
    """Pick the option with the highest mean log-probability per token (see module)."""
    if not mean_logprobs:
        raise ValueError("choose: no options to choose from")
    if not 0 <= gold < len(mean_logprobs):
        raise ValueError(f"choose: gold index {gold} is outside 0..{len(mean_logprobs) - 1}")
    best = max(mean_logprobs)
    winners = [i for i, s in enumerate(mean_logprobs) if best - s <= tolerance]
    credit = 1.0 / len(winners) if gold in winners else 0.0
    return ChoiceOutcome(predicted=winners[0], credit=credit, tied=len(winners))


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float],
    n: int,
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of `statistic(item_indices)` over `n` items.

    None when there are fewer than two items (no spread to resample)."""
    if n < 2:
        return None
    result = stats.bootstrap(
        (np.arange(n),),
        statistic,
        vectorized=False,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    return float(low), float(high)


def repeated_trigrams(texts: list[str]) -> float:
    """Share of the word 3-grams of `texts` that repeat an earlier one of the same text."""
    total = repeated = 0
    for text in texts:
        words = text.split()
        grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
        total += len(grams)
        repeated += len(grams) - len(set(grams))
    return repeated / total if total else 0.0
