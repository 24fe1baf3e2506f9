"""The guard's data files (chatforge/data/, training/data/) load, and a malformed one is
refused with the file and the bad value named."""

from __future__ import annotations

import pytest
import yaml

from chatforge.data_files import DataFileError
from chatforge.guard_lexicon import LEXICON, LEXICON_FILE, load_lexicon
from training.guard_data import FRAGMENTS_FILE, load_fragments
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
