"""The eval scorers and aggregates on hand-checked examples."""

from __future__ import annotations

import math

import pytest

from evals.results import MetricSpec, Row, aggregate
from evals.scoring import (
    bootstrap_ci,
    choose,
    exact_match,
    normalize_answer,
    rouge_l,
    token_f1,
)


def test_normalisation_drops_case_punctuation_articles_and_keeps_every_script():
    assert normalize_answer("The  Café, naïve!") == "café naïve"
    assert normalize_answer("ＡＢＣ — 世界 你好") == "abc 世界 你好"  # full-width folded (NFKC)
    assert normalize_answer("An apple; a PEAR.") == "apple pear"
    assert normalize_answer("🎉 !!") == ""  # symbols and punctuation only


def test_exact_match():
    assert exact_match("The answer.", "answer") == 1.0
    assert exact_match("CAFÉ", "café") == 1.0
    assert exact_match("answers", "answer") == 0.0


def test_token_f1_hand_checked():
    # prediction "cat sat", reference "cat sat down": P = 2/2, R = 2/3, F1 = 0.8
    assert token_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    # repeated tokens count once per match: P = 1/3, R = 1/1, F1 = 0.5
    assert token_f1("dog dog dog", "dog") == pytest.approx(0.5)
    assert token_f1("nothing shared", "different words") == 0.0
    assert token_f1("世界 你好", "你好 世界") == 1.0  # bag of tokens, any script


def test_empty_answers_follow_squad_v2():
    assert token_f1("", "a real answer") == 0.0
    assert token_f1("an answer", "") == 0.0
    assert token_f1("", "") == 1.0
    assert token_f1("the", "") == 1.0  # only an article: empty after normalisation
    assert rouge_l("", "an answer") == 0.0
    assert rouge_l("...", "!") == 1.0
    assert exact_match("", "") == 1.0


def test_rouge_l_is_longest_common_subsequence():
    # LCS of "p q r s" and "p r x s" is "p r s": P = R = 3/4
    assert rouge_l("p r x s", "p q r s") == pytest.approx(0.75)
    # "a" is an article and is dropped first: "c x d" vs "b c d", LCS "c d", P = R = 2/3
    assert rouge_l("a c x d", "a b c d") == pytest.approx(2 / 3)
    # order matters for ROUGE-L, not for F1
    assert rouge_l("sat cat", "cat sat") == pytest.approx(0.5)
    assert token_f1("sat cat", "cat sat") == 1.0
    assert rouge_l("Ünïcode wörds", "ünïcode WÖRDS") == 1.0


def test_choice_picks_highest_mean_logprob():
    outcome = choose([-2.0, -0.5, -1.0], gold=1)
    assert (outcome.predicted, outcome.credit, outcome.tied) == (1, 1.0, 1)
    assert choose([-2.0, -0.5, -1.0], gold=0).credit == 0.0


def test_choice_ties_split_the_credit():
    # gold ties with one other option: half credit, whatever the positions
    assert choose([-1.0, -1.0, -3.0], gold=0).credit == 0.5
    assert choose([-1.0, -1.0, -3.0], gold=1).credit == 0.5
    assert choose([-1.0, -1.0, -1.0, -1.0], gold=3).credit == 0.25
    # a tie that does not include gold earns nothing
    outcome = choose([-1.0, -1.0, -3.0], gold=2)
    assert (outcome.predicted, outcome.credit, outcome.tied) == (0, 0.0, 2)


def test_choice_rejects_bad_gold():
    with pytest.raises(ValueError, match="gold index 3"):
        choose([-1.0, -2.0], gold=3)


def test_bootstrap_interval_brackets_the_mean_and_is_reproducible():
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    ci = bootstrap_ci(lambda idx: sum(values[i] for i in idx) / len(idx), len(values))
    assert ci is not None
    low, high = ci
    assert low <= 0.625 <= high
    assert 0.0 <= low < high <= 1.0
    assert bootstrap_ci(lambda idx: sum(values[i] for i in idx) / len(idx), len(values)) == ci
    assert bootstrap_ci(lambda idx: 1.0, 1) is None  # one item: no interval


def test_ratio_aggregate_is_a_ratio_of_sums_not_a_mean_of_ratios():
    spec = MetricSpec("bpb", "ratio", "nats", "", denominator="bytes", scale=1 / math.log(2))
    rows = [Row("a", scores={"nats": 10.0, "bytes": 10.0}),
            Row("b", scores={"nats": 90.0, "bytes": 30.0}),
            Row("c", error="UNAVAILABLE: gone")]  # fmt: skip
    agg = aggregate(spec, rows)
    assert agg.value == pytest.approx(100 / 40 / math.log(2))  # not (1 + 3) / 2
    assert agg.n == 2  # the errored row is left out


def test_percentile_pools_samples_across_items():
    spec = MetricSpec("p50", "percentile", "gaps", "", q=50.0)
    rows = [Row("a", samples={"gaps": [1.0, 2.0, 3.0]}), Row("b", samples={"gaps": [10.0]})]
    assert aggregate(spec, rows).value == pytest.approx(2.5)
    mean = MetricSpec("mean", "pooled_mean", "gaps", "")
    assert aggregate(mean, rows).value == pytest.approx(4.0)


def test_compare_pairs_items_and_ranks_changes_by_the_first_metric():
    from evals.compare import compare_runs
    from evals.results import RunResult

    spec = MetricSpec("bits_per_byte", "ratio", "nats", "", denominator="bytes",
                      higher_is_better=False)  # fmt: skip

    def run(nats: list[float]) -> RunResult:
        rows = [Row(f"c{i}", scores={"nats": n, "bytes": 10.0, "bits_per_byte": n / 10})
                for i, n in enumerate(nats)]  # fmt: skip
        result = RunResult("perplexity", "1", "m", {}, {}, [spec], rows)
        result.compute_aggregates()
        return result

    before = run([10.0, 12.0, 14.0, 16.0, 18.0, 20.0])
    after = run([5.0, 6.0, 7.0, 8.0, 9.0, 20.0])  # better on five chunks, same on one
    comparison = compare_runs(before, after)
    (delta,) = comparison.deltas
    assert delta.delta == pytest.approx(55 / 60 - 90 / 60)
    assert delta.ci_high < 0 and delta.verdict == "better"  # lower bits per byte is better
    assert [c.id for c in comparison.changed] == ["c4", "c3", "c2", "c1", "c0"]
    assert comparison.changed[0].change == pytest.approx(-0.9)
