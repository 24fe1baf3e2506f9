"""Streaming text never splits a UTF-8 character and stop strings cut cleanly."""

import pytest

from backend.detokenize import IncrementalDetokenizer, StopMatcher
from tests.tiny_model import make_tokenizer

TEXTS = [
    "Grüße aus Łódź, Ångström",
    "世界 你好 — 🎉🎉 emoji ∑ maths ✓",
    "plain ascii only",
    "mixed 日本語 and English 🇫🇷 flags",
]


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


@pytest.mark.parametrize("text", TEXTS)
def test_multibyte_characters_survive_token_by_token(tokenizer, text):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    # The byte-level tokenizer must split some multi-byte characters, or the test is moot.
    if text != "plain ascii only":
        assert any("\ufffd" in tokenizer.decode([i]) for i in ids)
    detokenizer = IncrementalDetokenizer(tokenizer)
    deltas = [detokenizer.add(i) for i in ids] + [detokenizer.flush()]
    assert all("\ufffd" not in d for d in deltas)
    assert "".join(deltas) == text


def test_stop_string_is_cut_and_never_emitted():
    matcher = StopMatcher(["</answer>"])
    out = [matcher.feed(piece) for piece in ["The answer", " is 4</an", "swer> and more"]]
    assert "".join(out) == "The answer is 4"
    assert matcher.stopped
    assert matcher.flush() == ""


def test_partial_stop_prefix_is_released_when_it_does_not_match():
    matcher = StopMatcher(["STOP"])
    assert matcher.feed("a ST") == "a "
    assert matcher.feed("ILL") == "STILL"
    assert not matcher.stopped
    assert matcher.feed("x S") == "x "
    assert matcher.flush() == "S"


def test_earliest_of_several_stops_wins():
    matcher = StopMatcher(["\n\n", "User:"])
    assert matcher.feed("hi User: x\n\n") == "hi "
    assert matcher.stopped
