"""Streaming text never splits a character nor shows a U+FFFD the model did not produce
whole: real byte-level tokenizers (the tiny model's and the default model's) drive token
streams that cut emoji, combining marks, right-to-left and zero-width characters at every
byte, ended at max_tokens or a cancel (the stream stops, then flushes) or at a stop
string; then the same through a real server. Stop strings cut cleanly."""

import pytest
from transformers import AutoTokenizer

from backend.client import ChatClient
from backend.detokenize import IncrementalDetokenizer, StopMatcher
from backend.gguf_convert import prepare_gguf
from backend.launcher import BackendProcess
from backend.text_codec import TextCodec
from chat.v1 import chat_pb2
from tests.conftest import NO_CACHE
from tests.helpers import finished_of, text_of
from tests.scripted_model import make_scripted_ids
from tests.tiny_model import make_tokenizer

TEXTS = [
    "Grüße aus Łódź, Ångström",
    "世界 你好 — 🎉🎉 emoji ∑ maths ✓",
    "plain ascii only",
    "mixed 日本語 and English 🇫🇷 flags",
]
# Emoji sequences (ZWJ, skin tone, flag), right-to-left scripts with a direction mark,
# zero-width characters and combining marks, stacked.
TRICKY = [
    "👩‍👩‍👧 family, 👍🏽 thumbs, 🇫🇷 flag, 👩‍🔬",
    "שלום עולם and مرحبا\u200f بالعالم",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom",
    "cafe\u0301 n\u0303 Tiếng Việt a\u0308\u0304",
]
REAL_FFFD = "a real \ufffd the model wrote whole"
# Every byte distinct, so a scripted model can reply one byte per token: an emoji, a
# Hebrew letter, a zero-width space and a combining accent, each cut into its bytes.
SCRIPT = "ok 👍ש\u200be\u0301"


@pytest.fixture(scope="module")
def tiny_codec() -> TextCodec:
    return TextCodec(make_tokenizer())


@pytest.fixture(scope="module")
def default_codec() -> TextCodec:
    """SmolLM2's tokenizer, from the checkpoint the server converts (once) and serves."""
    return TextCodec(AutoTokenizer.from_pretrained(prepare_gguf("builtin")))


@pytest.fixture(scope="module", params=["tiny", "default"])
def codec(request, tiny_codec) -> TextCodec:
    if request.param == "default":
        return request.getfixturevalue("default_codec")
    return tiny_codec


def byte_tokens(codec: TextCodec, data: bytes) -> list[int]:
    """One token per byte: a byte-level vocabulary has a token for each of the 256."""
    single = {piece[0]: i for i, piece in enumerate(codec.token_bytes()) if len(piece) == 1}
    return [single[b] for b in data]


def stream(codec: TextCodec, ids: list[int], stops: tuple[str, ...] = ()) -> list[str]:
    """The deltas of a stream of `ids` as the server sends them: detokenized, cut at a
    stop string, and flushed at the end unless a stop string ended it."""
    detokenizer, matcher = IncrementalDetokenizer(codec), StopMatcher(stops)
    deltas = []
    for token in ids:
        deltas.append(matcher.feed(detokenizer.add(token)))
        if matcher.stopped:
            return deltas
    return [*deltas, matcher.feed(detokenizer.flush()) + matcher.flush()]


def test_token_bytes_are_what_decode_writes(codec):
    table = codec.token_bytes()
    for i, piece in enumerate(table):
        assert piece.decode("utf-8", "replace") == codec.decode([i]), i
    for text in TRICKY:
        ids = codec.encode(text)
        assert b"".join(table[i] for i in ids) == text.encode()


@pytest.mark.parametrize("text", TEXTS)
def test_multibyte_characters_survive_token_by_token(tiny_codec, text):
    ids = tiny_codec.encode(text)
    # The byte-level tokenizer must split some multi-byte characters, or the test is moot.
    if text != "plain ascii only":
        assert any("\ufffd" in tiny_codec.decode([i]) for i in ids)
    deltas = stream(tiny_codec, ids)
    assert all("\ufffd" not in d for d in deltas)
    assert "".join(deltas) == text


@pytest.mark.parametrize("text", [*TRICKY, REAL_FFFD])
def test_a_stream_cut_at_any_byte_shows_only_whole_characters(codec, text):
    """max_tokens or a cancel after any byte: the text is every whole character so far;
    the cut one is dropped, never shown as U+FFFD, while a real U+FFFD passes."""
    data = text.encode()
    ids = byte_tokens(codec, data)
    for cut in range(len(ids) + 1):
        deltas = stream(codec, ids[:cut])
        assert "".join(deltas) == data[:cut].decode("utf-8", "ignore"), cut
        if "\ufffd" not in text:
            assert not any("\ufffd" in d for d in deltas), (cut, deltas)


@pytest.mark.parametrize("text", TRICKY)
def test_the_tokenizers_own_tokens_cut_anywhere_show_only_whole_characters(codec, text):
    ids = codec.encode(text)
    assert any("\ufffd" in codec.decode([i]) for i in ids)  # some token holds a part
    for cut in range(len(ids) + 1):
        deltas = stream(codec, ids[:cut])
        assert not any("\ufffd" in d for d in deltas), (cut, deltas)
        assert "".join(deltas) == codec.decode(ids[:cut]).rstrip("\ufffd")


def test_invalid_bytes_from_the_model_never_become_u_fffd(codec):
    # A lead byte followed by ASCII, and a stray continuation byte: no character at all.
    ids = byte_tokens(codec, b"ok \xe2\x80 then \x80 end")
    assert "".join(stream(codec, ids)) == "ok  then  end"


@pytest.mark.parametrize(
    ("text", "stop"),
    [
        (TRICKY[0], "👍🏽"),  # a stop string that is a cut emoji sequence itself
        (TRICKY[0], ", 👩"),  # after a ZWJ sequence, starting like the emoji before it
        (TRICKY[1], "مرحبا"),  # right-to-left
        (TRICKY[1], "\u200f"),  # the direction mark alone
        (TRICKY[2], "\u200d"),  # a zero-width joiner
        (TRICKY[3], "\u0301"),  # a combining accent: the base letter stays
    ],
)
def test_a_stop_string_cuts_between_whole_characters(codec, text, stop):
    deltas = stream(codec, byte_tokens(codec, text.encode()), (stop,))
    assert "".join(deltas) == text[: text.index(stop)]
    assert not any("\ufffd" in d for d in deltas)


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


# --- Through a real server --------------------------------------------------------------


@pytest.fixture(scope="module")
def byte_server(tmp_path_factory, tiny_codec):
    """A scripted model whose greedy reply is SCRIPT, one byte per token."""
    folder = tmp_path_factory.mktemp("bytes")
    reply = byte_tokens(tiny_codec, SCRIPT.encode())
    model = make_scripted_ids(folder / "model", tiny_codec.tokenizer, reply)
    registry = folder / "models.yaml"
    registry.write_text(f"models:\n  bytes:\n    checkpoint: {model}\n    default: true\n")
    with BackendProcess(registry, extra_args=NO_CACHE, log_path=folder / "server.log") as server:
        yield server


def _chat(server, **sampling) -> list[chat_pb2.ChatEvent]:
    with ChatClient(server.target) as client:
        return list(client.chat("Hi", sampling={"temperature": 0.0, **sampling}))


def test_server_streams_cut_at_max_tokens_hold_only_whole_characters(byte_server):
    data = SCRIPT.encode()
    assert text_of(_chat(byte_server)) == SCRIPT
    for max_tokens in range(1, len(data)):
        events = _chat(byte_server, max_tokens=max_tokens)
        deltas = [e.delta.text for e in events if e.HasField("delta")]
        assert not any("\ufffd" in d for d in deltas), (max_tokens, deltas)
        assert "".join(deltas) == data[:max_tokens].decode("utf-8", "ignore")
        assert finished_of(events).finish_reason == chat_pb2.LENGTH


@pytest.mark.parametrize("stop", ["\u200b", "ש", "e\u0301", "\u0301"])
def test_server_stop_strings_cut_between_whole_characters(byte_server, stop):
    events = _chat(byte_server, stop=[stop])
    assert text_of(events) == SCRIPT[: SCRIPT.index(stop)]
    assert not any("\ufffd" in e.delta.text for e in events if e.HasField("delta"))
    assert finished_of(events).finish_reason == chat_pb2.STOP_SEQUENCE
