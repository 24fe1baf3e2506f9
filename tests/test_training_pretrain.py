"""Pretraining end to end on a tiny corpus: logs, exact resume after Ctrl-C, DDP replicas,
export, and the exported folder served by the real server with no training code."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from backend.client import ChatClient
from backend.launcher import BackendProcess
from chatforge.corpus_files import load_documents
from tests.training.helpers import (
    FIXTURE,
    REPO,
    TINY_MODEL,
    TINY_TRAIN,
    child_env,
    run_training,
    train_here,
)
from training.bpe import train_tokenizer
from training.corpus import build_corpus
from training.pretrain import load_trained


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> dict[str, Path]:
    """A corpus and a 300-token tokenizer built once for the module."""
    root = tmp_path_factory.mktemp("pretrain")
    corpus, _ = build_corpus(str(FIXTURE), root / "corpus", val_fraction=0.25, test_fraction=0.0)
    texts = [d.text for d in load_documents(corpus, "train")]
    train_tokenizer(texts, vocab_size=300).save_pretrained(root / "tok")
    return {"root": root, "corpus": corpus, "tokenizer": root / "tok"}


def pretrain_args(prepared, out: Path, *extra: str) -> list[str]:
    return [
        "pretrain", "--corpus", str(prepared["corpus"]), "--tokenizer", str(prepared["tokenizer"]),
        "--out", str(out), *TINY_MODEL, *TINY_TRAIN, "--sample-tokens", "8", *extra,
    ]  # fmt: skip


def losses(folder: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["train_loss"]) for r in rows if "train_loss" in r]


def test_pretrain_logs_steps_epochs_and_beats_the_unigram_baseline(
    prepared, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("CHATFORGE_DAILY_LOG", str(tmp_path / "log"))
    out = tmp_path / "base"
    args = pretrain_args(prepared, out, "--max-steps", "40", "--eval-every", "20", "--lr", "1e-2")
    assert train_here(*args) == 0
    printed = capsys.readouterr().out
    assert "vs unigram baseline" in printed and "sample:" in printed
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 41))
    for key in ("epoch", "tokens_seen", "train_loss", "lr", "tokens_per_second", "flops"):
        assert key in rows[0]
    assert rows[-1]["tokens_seen"] == 40 * 4 * 16 and rows[-1]["epoch"] > 1
    assert [r["step"] for r in rows if "val_loss" in r] == [20, 40]
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "completed" and run["step"] == 40
    assert run["config"]["train"]["batch_size"] == 4 and run["gradient_accumulation"] == 2
    final = run["final"]
    assert final["val_loss"] < final["unigram_val_loss"]
    assert 0 < final["val_bits_per_byte"] < final["unigram_bits_per_byte"]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] - 1.0
    assert (out / "tokenizer" / "tokenizer.json").is_file()
    assert "pretrain:" in next((tmp_path / "log").glob("*.md")).read_text()


def test_ctrl_c_then_resume_gives_the_uninterrupted_curve(prepared, tmp_path):
    steps = ["--max-steps", "120", "--eval-every", "40", "--save-every", "1000"]
    steps += ["--optimizer", "muon"]
    reference = tmp_path / "reference"
    assert train_here(*pretrain_args(prepared, reference, *steps)) == 0
    interrupted = tmp_path / "interrupted"
    command = [sys.executable, "-m", "training", *pretrain_args(prepared, interrupted, *steps)]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    metrics = interrupted / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 5):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "--resume" in stdout
    run = json.loads((interrupted / "run.json").read_text())
    assert run["status"] == "interrupted" and 5 <= run["step"] < 120
    assert train_here(*pretrain_args(prepared, interrupted, *steps, "--resume")) == 0
    assert losses(interrupted) == losses(reference)  # same steps, same losses, no duplicates
    assert json.loads((interrupted / "run.json").read_text())["status"] == "completed"
    resumed = load_trained(interrupted).state_dict()
    for name, tensor in load_trained(reference).state_dict().items():
        assert torch.equal(tensor, resumed[name]), name


def test_bad_runs_are_refused_with_a_reason(prepared, tmp_path, capsys):
    out = tmp_path / "run"
    assert train_here(*pretrain_args(prepared, out, "--max-steps", "2")) == 0
    capsys.readouterr()

    def args(folder, *extra):
        return pretrain_args(prepared, folder, "--max-steps", "2", *extra)

    cases = [
        (args(out), "--resume"),
        (args(out, "--lr", "0.5", "--resume"), "lr: 0.003 -> 0.5"),
        (args(tmp_path / "b", "--micro-batch-size", "3"), "micro-batch"),
        (args(tmp_path / "c", "--seq-len", "400"), "--seq-len"),
        (args(tmp_path / "d", "--n-embd", "30"), "not divisible"),
        (args(tmp_path / "e", "--threads", "-1"), "--threads -1: give a count"),
    ]
    for argv, reason in cases:
        assert train_here(*argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and reason in err, err


def test_two_process_ddp_keeps_replicas_identical(prepared, tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--rdzv-backend", "c10d", "--rdzv-endpoint", "127.0.0.1:0"]  # fmt: skip
    ddp = tmp_path / "ddp"
    steps = ["--max-steps", "6", "--eval-every", "3"]
    done = run_training(*pretrain_args(prepared, ddp, *steps), launcher=torchrun)
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads((ddp / "run.json").read_text())
    assert run["hardware"]["processes"] == 2
    checksums = run["result"]["extra"]["replica_checksums"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]
    single = tmp_path / "single"
    assert train_here(*pretrain_args(prepared, single, *steps)) == 0
    for (step_a, loss_a), (step_b, loss_b) in zip(losses(ddp), losses(single), strict=True):
        assert step_a == step_b and loss_a == pytest.approx(loss_b, rel=1e-4)


def test_export_is_served_by_the_real_server(prepared, tmp_path):
    run = tmp_path / "base"
    args = pretrain_args(prepared, run, "--max-steps", "4", "--eval-every", "2", "--context", "64")
    assert train_here(*args) == 0
    registry = tmp_path / "models.yaml"
    export = [
        "export",
        "--run",
        str(run),
        "--register",
        "scratch-tiny",
        "--registry",
        str(registry),
    ]
    assert train_here(*export) == 0
    exported = run / "hf"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json",
                 "run.json", "metrics.jsonl"):  # fmt: skip
        assert (exported / name).is_file(), name
    assert "checkpoint: base/hf" in registry.read_text()
    ours = load_trained(run).eval()
    hf = AutoModelForCausalLM.from_pretrained(exported, dtype=torch.float32).eval()
    ids = torch.randint(0, 300, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (ours(ids) - hf(input_ids=ids).logits).abs().max().item() < 1e-4
    # The server is its own process: it imports backend/ only and reads the folder.
    server = BackendProcess(registry, log_path=tmp_path / "server.log")
    with server, ChatClient(server.target) as client:
        listed = client.list_models()
        assert [m.name for m in listed.models] == ["scratch-tiny"]
        card = client.get_model("scratch-tiny")
        assert card.architecture == "LlamaForCausalLM" and card.run_json
        assert len(card.metrics) == 4
        events = list(client.chat("Widgets?", sampling={"max_tokens": 8, "seed": 1}))
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished" and "delta" in kinds
