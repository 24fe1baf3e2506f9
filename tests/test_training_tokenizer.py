"""The BPE tokenizer: transformers format, chat tokens and template, bytes/token report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from transformers import AutoTokenizer

from tests.tiny_model import make_tokenizer
from training.bpe import SPECIAL_TOKENS, bytes_per_token, compare_tokenizers, train_tokenizer
from training.corpus import build_corpus

FIXTURE = Path(__file__).parent / "training" / "corpus"
REPO = Path(__file__).resolve().parent.parent
TEXTS = [p.read_text() for p in sorted(FIXTURE.rglob("*.*"))]


def test_saved_tokenizer_loads_in_transformers_with_chat_template(tmp_path):
    tokenizer = train_tokenizer(TEXTS * 3, vocab_size=400)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert len(loaded) == 400
    for token in SPECIAL_TOKENS:
        assert len(loaded.encode(token, add_special_tokens=False)) == 1
    assert loaded.eos_token == "<|im_end|>" and loaded.pad_token == "<|endoftext|>"
    text = "naïve café — 世界 🎉 def f(x): return x ** 2\n\n    indented"
    ids = loaded.encode(text, add_special_tokens=False)
    assert loaded.decode(ids) == text  # byte-level: everything round-trips
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    chat = loaded.apply_chat_template(messages, tokenize=False)
    assert chat == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
    prompt = loaded.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")


def test_merges_compress_training_like_text():
    small = train_tokenizer(TEXTS * 3, vocab_size=260)
    larger = train_tokenizer(TEXTS * 3, vocab_size=600)
    assert bytes_per_token(small, TEXTS) < bytes_per_token(larger, TEXTS)
    assert bytes_per_token(larger, TEXTS) > 2.0


def test_comparison_with_a_reference_and_without_one(tmp_path):
    ours = train_tokenizer(TEXTS, vocab_size=400)
    reference = tmp_path / "ref"
    make_tokenizer().save_pretrained(reference)
    report = compare_tokenizers(ours, TEXTS, reference)
    assert report["reference"] > 0 and report["reference_vocab"] == len(make_tokenizer())
    missing = compare_tokenizers(ours, TEXTS, tmp_path / "absent")
    assert "reference" not in missing
    assert "python -m backend prepare-default" in missing["reference_missing"]


def test_cli_writes_tokenizer_and_report(tmp_path):
    corpus, _ = build_corpus(str(FIXTURE), tmp_path / "corpus")
    env = {**os.environ, "CHATFORGE_DAILY_LOG": str(tmp_path / "log")}
    out = tmp_path / "tok"
    done = subprocess.run(
        [sys.executable, "-m", "training", "tokenizer", "--corpus", str(corpus)]
        + ["--vocab-size", "300", "--out", str(out), "--compare", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert "bytes per token on the val split" in done.stdout
    assert "python -m backend prepare-default" in done.stdout
    report = json.loads((out / "tokenizer_report.json").read_text())
    assert report["measured_on"] == "val" and report["ours"] > 1
    assert (out / "tokenizer.json").is_file()
    assert "tokenizer: byte-level BPE 300" in next((tmp_path / "log").glob("*.md")).read_text()
    bad = subprocess.run(
        [sys.executable, "-m", "training", "tokenizer", "--corpus", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert bad.returncode == 2 and "python -m training data" in bad.stderr
