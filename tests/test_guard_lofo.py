"""The leave-one-family-out protocol end to end: the real training command writes a
classifier per held-out family or language, and the guardrails suite measures the whole
guard (normalisation, rules, that classifier) on what each one never saw."""

from __future__ import annotations

import json

from evals.runner import run_suite
from evals.suites import SuiteConfig
from evals.targets import GuardFoldersTarget, open_target
from training.__main__ import main as training_main
from training.guard_data import build_examples
from training.guard_lofo import holdouts


def test_holdouts_leave_out_a_family_or_a_whole_language():
    examples = build_examples(0, 10)
    splits = holdouts(examples)
    train, held = splits["family-roleplay"]
    assert held and all(e.family == "roleplay" and e.label == 1 for e in held)
    assert not any(e.family == "roleplay" and e.label == 1 for e in train)
    assert {e.language for e in held} > {"en", "fr"}  # the family in every language
    train, held = splits["language-ja"]
    assert {e.label for e in held} == {0, 1} and {e.language for e in held} == {"ja"}
    assert all(e.language != "ja" for e in train) and len(train) + len(held) == len(examples)


def test_lofo_folders_are_measured_by_the_guardrails_suite(tmp_path):
    out = tmp_path / "lofo"
    only = "family-obfuscation,language-fr"
    assert (
        training_main(["guard-lofo", "--out", str(out), "--per-family", "10", "--only", only]) == 0
    )
    summary = json.loads((out / "lofo.json").read_text())
    assert set(summary) == {"family-obfuscation", "language-fr"}
    assert summary["language-fr"]["benign"] > 0 and summary["family-obfuscation"]["benign"] == 0

    target = open_target(str(out))
    assert isinstance(target, GuardFoldersTarget)
    result = run_suite("guardrails", target, SuiteConfig(full=True), out_root=tmp_path / "runs",
                       record=False).result  # fmt: skip
    agg = result.aggregates
    assert agg["recall_family_obfuscation"].n == summary["family-obfuscation"]["attacks"]
    assert agg["recall_language_fr"].n == summary["language-fr"]["attacks"]
    assert agg["fpr_language_fr"].n == summary["language-fr"]["benign"]
    # Normalisation and rules in front of the classifier: the guard catches at least what
    # the classifier trained without obfuscated examples catches alone.
    assert (
        agg["recall_family_obfuscation"].value >= summary["family-obfuscation"]["classifier_recall"]
    )
    assert any("revealed by" in r.output for r in result.rows)
