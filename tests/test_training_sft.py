"""SFT: assistant-only loss on the chat template's own tokens, packing, and the command."""

from __future__ import annotations

import json

import pytest

from chatforge.corpus_files import load_documents
from tests.tiny_model import make_tokenizer
from tests.training.helpers import FIXTURE, TINY_MODEL, train_here
from training.bpe import train_tokenizer
from training.chat_data import load_jsonl
from training.corpus import build_corpus
from training.errors import TrainingError
from training.sft import HANDWRITTEN, encode_and_pack

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is a list?"},
    {"role": "assistant", "content": "A mutable sequence."},
    {"role": "user", "content": "And a tuple?"},
    {"role": "assistant", "content": "An immutable one."},
]


def test_rows_hold_the_templates_tokens_and_only_answers_count():
    tokenizer = make_tokenizer()
    ids = list(tokenizer.apply_chat_template(CONVERSATION, tokenize=True)["input_ids"])
    rows, dropped = encode_and_pack(tokenizer, [CONVERSATION], seq_len=len(ids) + 5)
    assert dropped == 0 and len(rows) == 1
    assert rows.tokens[0, : len(ids)].tolist() == ids
    _, targets = rows.get([0])
    learned = tokenizer.decode([t for t in targets[0].tolist() if t != -100])
    assert learned == "A mutable sequence.<|im_end|>\nAn immutable one.<|im_end|>\n"


def test_packing_keeps_conversations_whole_and_masks_padding():
    tokenizer = make_tokenizer()
    convs = [CONVERSATION[1:3]] * 5
    length = len(tokenizer.apply_chat_template(convs[0], tokenize=True)["input_ids"])
    rows, dropped = encode_and_pack(tokenizer, convs, seq_len=2 * length)  # two fit per row
    assert dropped == 0 and len(rows) == 3
    inputs, targets = rows.get([0, 1, 2])
    assert inputs.shape == (3, 2 * length)
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert (targets[2][rows.tokens[2, 1:] == pad] == -100).all()  # padding never counts
    _, dropped = encode_and_pack(tokenizer, convs, seq_len=4)  # no answer fits
    assert dropped == 5


def test_handwritten_set_is_valid_and_bad_files_are_named(tmp_path):
    convs, skipped = load_jsonl(HANDWRITTEN)
    assert len(convs) >= 30 and skipped == 0
    assert any("chatforge" in m["content"] for c in convs for m in c)
    kinds = {json.loads(line)["kind"] for line in HANDWRITTEN.read_text().splitlines()}
    assert {"identity", "greeting", "refusal", "refusal-harm"} <= kinds
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": "hi"}\n')
    with pytest.raises(TrainingError, match="bad.jsonl:1"):
        load_jsonl(bad)


def test_sft_command_fine_tunes_a_base_run(tmp_path, capsys):
    corpus, _ = build_corpus(str(FIXTURE), tmp_path / "corpus", val_fraction=0.25, test_fraction=0)
    tokenizer = tmp_path / "tok"
    texts = [d.text for d in load_documents(corpus, "train")]
    train_tokenizer(texts, vocab_size=300).save_pretrained(tokenizer)
    base, chat = tmp_path / "base", tmp_path / "chat"
    common = ["--corpus", str(corpus), "--batch-size", "4", "--micro-batch-size", "2"]
    common += ["--log-every", "1", "--eval-batches", "2"]
    assert train_here("pretrain", "--tokenizer", str(tokenizer), "--out", str(base), *TINY_MODEL,
                      *common, "--seq-len", "16", "--context", "96", "--max-steps", "3",
                      "--sample-tokens", "4") == 0  # fmt: skip
    sft = ["sft", "--base", str(base), "--out", str(chat), *common, "--seq-len", "96"]
    sft += ["--max-steps", "6", "--eval-every", "3", "--handwritten-repeat", "1"]
    assert train_here(*sft) == 0
    printed = capsys.readouterr().out
    assert "for the base model before SFT" in printed and "> Who are you?" in printed
    run = json.loads((chat / "run.json").read_text())
    assert run["kind"] == "sft" and run["status"] == "completed" and run["base"] == str(base)
    assert run["data"]["handwritten"] == f"{len(load_jsonl(HANDWRITTEN)[0])} x 1"
    assert "Who are you?" in run["samples"]
    # SFT learned the conversations: its assistant-token loss beats the base model's
    assert 0 < run["final"]["val_loss"] < run["final"]["base_model_val_loss"]
    assert run["config"]["model"] == json.loads((base / "run.json").read_text())["config"]["model"]
    lines = [json.loads(x) for x in (chat / "conversations.jsonl").read_text().splitlines()]
    assert {x["split"] for x in lines} == {"train", "val"}
    assert (chat / "tokenizer" / "tokenizer.json").is_file()
    too_long = train_here("sft", "--base", str(base), "--out", str(tmp_path / "x"), *common,
                          "--seq-len", "200", "--max-steps", "1")  # fmt: skip
    assert too_long == 2 and "exceeds the base model's context 96" in capsys.readouterr().err
