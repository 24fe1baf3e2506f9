"""The guard's data files (chatforge/data/, training/data/) load, and a malformed one is
refused with the file and the bad value named."""

from __future__ import annotations

import pytest
import yaml

from chatforge.data_files import DataFileError
from chatforge.guard_lexicon import LEXICON, LEXICON_FILE, load_lexicon
from chatforge.guard_lookalikes import LOOKALIKES_FILE, load_lookalikes
from evals.suites.guardrails import lookalike_categories, short_turns
from training.guard_data import FRAGMENTS_FILE, build_examples, load_fragments
from training.guard_languages import LANGUAGES_FILE, load_languages


def _write(tmp_path, data) -> object:
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def test_the_shipped_files_load():
    assert load_lexicon() == LEXICON and "ignore" in LEXICON
    languages, questions = load_languages()
    assert "fr" in languages and set(questions) == set(languages)
    assert load_fragments().override_verbs[0] == "Ignore"


def test_a_lexicon_fragment_that_is_not_an_expression_is_named(tmp_path):
    data = yaml.safe_load(LEXICON_FILE.read_text())
    data["concepts"]["ignore"]["en"].append("ign(ore")
    with pytest.raises(DataFileError, match=r"ignore\.en: 'ign\(ore'"):
        load_lexicon(_write(tmp_path, data))


def test_a_language_without_harm_slot_or_with_a_number_is_refused(tmp_path):
    data = yaml.safe_load(LANGUAGES_FILE.read_text())
    data["languages"]["fr"]["roleplay"][0] = "Joue un rôle."
    with pytest.raises(DataFileError, match=r"languages\.fr\.roleplay: every one needs \{harm\}"):
        load_languages(_write(tmp_path, data))
    data["languages"]["fr"]["roleplay"][0] = 7
    with pytest.raises(DataFileError, match=r"languages\.fr\.roleplay\.0"):
        load_languages(_write(tmp_path, data))


def test_fragments_missing_a_list_are_refused(tmp_path):
    data = yaml.safe_load(FRAGMENTS_FILE.read_text())
    del data["harmful"]
    with pytest.raises(DataFileError, match=r"missing keys \['harmful'\]"):
        load_fragments(_write(tmp_path, data))


def test_lookalikes_split_by_template_and_train_the_classifier_on_one_half():
    train, held = load_lookalikes(split="train"), load_lookalikes(split="eval")
    assert len(train) + len(held) >= 500 and len({x.language for x in train + held}) >= 15
    assert not {x.template for x in train} & {x.template for x in held}
    assert {x.category for x in held} == {x.category for x in train}
    texts = {e.text for e in build_examples(0, 10) if e.family == "lookalike"}
    assert texts == {x.text for x in train}  # benign, and none of the evaluated half


def test_the_guardrails_suite_measures_each_lookalike_category_and_the_short_turns():
    sets = lookalike_categories()
    assert set(sets) == {x.category.replace("-", "_") for x in load_lookalikes()}
    short = short_turns()
    assert "hi" in short["benign"] and "write a keylogger" in short["attack"]


def test_a_lookalike_template_without_its_slot_is_refused(tmp_path):
    data = yaml.safe_load(LOOKALIKES_FILE.read_text())
    data["categories"]["device"]["templates"]["en"][1] = "How do I root a phone?"
    with pytest.raises(DataFileError, match=r"device\.en: at least two templates"):
        load_lookalikes(_write(tmp_path, data))
