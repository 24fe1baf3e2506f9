"""SFT: assistant-only loss on the chat template's own tokens, packing, and the command."""

from __future__ import annotations

import json

import pytest

from tests.tiny_model import make_tokenizer
from tests.training.helpers import FIXTURE, TINY_MODEL, train_here
from training.bpe import train_tokenizer
from training.corpus import build_corpus, load_documents
from training.errors import TrainingError
from training.sft import HANDWRITTEN, encode_conversation, pack, read_conversations

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is a list?"},
    {"role": "assistant", "content": "A mutable sequence."},
    {"role": "user", "content": "And a tuple?"},
    {"role": "assistant", "content": "An immutable one."},
]


def test_tokens_are_the_chat_templates_and_only_answers_count():
    tokenizer = make_tokenizer()
    ids, mask = encode_conversation(tokenizer, CONVERSATION)
    assert ids == list(tokenizer.apply_chat_template(CONVERSATION, tokenize=True)["input_ids"])
    learned = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m])
    assert learned == "A mutable sequence.<|im_end|>An immutable one.<|im_end|>"


def test_packing_keeps_conversations_whole_and_masks_padding():
    tokenizer = make_tokenizer()
    convs = [CONVERSATION[1:3]] * 5
    length = len(encode_conversation(tokenizer, convs[0])[0])
    rows, cut = pack(tokenizer, convs, seq_len=2 * length)  # two fit per row
    assert cut == 0 and len(rows) == 3
    inputs, targets = rows.get([0, 1, 2])
    assert inputs.shape == (3, 2 * length)
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert (targets[2][rows.tokens[2, 1:] == pad] == -100).all()  # padding never counts
    _, cut = pack(tokenizer, convs, seq_len=length // 2)
    assert cut == 5


def test_handwritten_set_is_valid_and_bad_files_are_named(tmp_path):
    convs = read_conversations(HANDWRITTEN)
    assert len(convs) >= 30
    assert any("chatforge" in m["content"] for c in convs for m in c)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    with pytest.raises(TrainingError, match="bad.jsonl:1: .*assistant"):
        read_conversations(bad)


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
    assert run["data"]["handwritten"] == f"{len(read_conversations(HANDWRITTEN))} x 1"
    assert run["final"]["val_loss"] > 0 and "Who are you?" in run["samples"]
    assert run["config"]["model"] == json.loads((base / "run.json").read_text())["config"]["model"]
    lines = [json.loads(x) for x in (chat / "conversations.jsonl").read_text().splitlines()]
    assert {x["split"] for x in lines} == {"train", "val"}
    assert (chat / "tokenizer" / "tokenizer.json").is_file()
    too_long = train_here("sft", "--base", str(base), "--out", str(tmp_path / "x"), *common,
                          "--seq-len", "200", "--max-steps", "1")  # fmt: skip
    assert too_long == 2 and "exceeds the base model's context 96" in capsys.readouterr().err
