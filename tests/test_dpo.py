"""Preference tuning on the tiny model: the pairs say what they should, a DPO run on a
fixed batch lowers its loss and raises the reward margin, it resumes, registers, and the
served adapter computes what training left; bad settings get clear errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from backend.model_loader import load_models
from backend.registry import load_registry
from backend.retrieval import augment
from training.corpus import build_corpus
from training.dpo import DPOSettings, dpo
from training.errors import TrainingError
from training.model_registry import registry_entries
from training.preference_pairs import PairSettings, build_pairs, preference_data, rag_messages

FIXTURE_CORPUS = Path(__file__).parent / "training" / "corpus"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder, _ = build_corpus(str(FIXTURE_CORPUS), tmp_path_factory.mktemp("dpo") / "c", seed=3)
    return folder


def test_rag_prompt_is_the_servers():
    prompt = preference_data()["rag_prompt"]
    assert prompt["instruction"] == augment.INSTRUCTION
    assert prompt["reminder"] == augment.REMINDER
    messages = rag_messages("Q?", [])
    assert messages[0] == {"role": "system", "content": augment.INSTRUCTION}
    assert messages[1]["content"].startswith(prompt["sources_header"] + "\n<sources>\n")


def test_pairs_cite_the_source_that_holds_the_answer(corpus):
    pairs = build_pairs(corpus, PairSettings(max_pairs=8, max_eval_pairs=4, safety_share=0.25))
    assert len(pairs["train"]) <= 8 and pairs["val"]
    kinds = {p["kind"] for p in pairs["train"]}
    assert "safety" in kinds and any(k.startswith("docs/") for k in kinds)
    for pair in pairs["train"] + pairs["val"]:
        chosen, rejected = pair["chosen"][0]["content"], pair["rejected"][0]["content"]
        assert chosen != rejected
        if pair["kind"] == "safety":
            assert chosen in preference_data()["refusals"]
            continue
        user = pair["prompt"][-1]["content"]
        n = int(re.search(r"\[(\d+)\]$", chosen).group(1))
        source = user.split(f"[{n}] ", 1)[1].split("\n\n[", 1)[0]
        answer = chosen.rsplit(" [", 1)[0]
        assert " ".join(answer.split())[:40] in " ".join(source.split())


def _dpo(corpus: Path, root: Path, steps: int, resume: bool = False) -> dict:
    return dpo(
        DPOSettings(
            base=str(root.parent / "model"),
            data=str(corpus),
            out=str(root / "run"),
            name="tiny-dpo",
            pairs=PairSettings(max_pairs=6, max_eval_pairs=2),
            max_steps=steps,
            batch_size=8,  # every pair in one batch: each step sees the same batch
            learning_rate=5e-3,
            warmup=0,
            schedule="constant",
            rank=8,
            lora_layers=None,
            resume=resume,
            registry=str(root / "runs-models.yaml"),
        )
    )


@pytest.fixture(scope="module")
def trained(corpus, tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("dpo-run") / "r"
    root.mkdir()
    (root.parent / "model").symlink_to(tiny_model_dir)
    first = _dpo(corpus, root, steps=3)
    second = _dpo(corpus, root, steps=6, resume=True)
    return root, first, second


def test_dpo_lowers_the_loss_on_a_fixed_batch_and_resumes(trained):
    root, first, second = trained
    assert first["final_metrics"]["steps"] == 3 and second["final_metrics"]["steps"] == 6
    rows = [json.loads(line) for line in (root / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if "train_loss" in r]
    assert [r["step"] for r in train] == sorted({r["step"] for r in train})  # no repeats
    assert train[0]["train_loss"] == pytest.approx(0.6931, abs=1e-3)  # policy == reference
    assert train[-1]["train_loss"] < train[0]["train_loss"] - 0.05
    assert train[-1]["reward_margin"] > 0
    assert {"logp_chosen", "logp_rejected", "reward_accuracy"} <= train[-1].keys()
    assert (root / "run" / "adapter" / "metrics.jsonl").is_file()


def test_dpo_registers_and_the_adapter_is_served(trained, tiny_model_dir, tmp_path):
    root, _, second = trained
    adapter = root / "run" / "adapter"
    spec, _ = registry_entries(root / "runs-models.yaml")["tiny-dpo"]
    assert (root / spec["adapter"]).resolve() == adapter.resolve()
    assert second["parent"].endswith("model")
    registry = tmp_path / "models.yaml"
    registry.write_text(
        f"models:\n  tiny:\n    checkpoint: {tiny_model_dir}\n"
        f"  tiny-dpo:\n    base: tiny\n    adapter: {adapter}\n"
    )
    loaded = {m.name: m for m in load_models(load_registry(registry).models)}
    try:
        ids = torch.tensor([[1, 5, 9, 14, 20]])
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        tuned = PeftModel.from_pretrained(base, str(adapter)).eval()
        with torch.no_grad():
            expected = tuned(input_ids=ids).logits
            served = loaded["tiny-dpo"].model(input_ids=ids, adapter_names=["tiny-dpo"]).logits
            with tuned.disable_adapter():
                parent = tuned(input_ids=ids).logits
        assert torch.allclose(served, expected, atol=1e-5)
        assert not torch.allclose(parent, expected, atol=1e-3)
    finally:
        loaded["tiny"].engine.stop()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"beta": 0}, "--beta must be positive"),
        ({"pairs": PairSettings(safety_share=1.5)}, "--safety-share"),
        ({"pairs": PairSettings(n_sources=1)}, "--sources must be at least 2"),
    ],
)
def test_bad_settings_are_refused_before_anything_loads(change, message, tmp_path):
    settings = DPOSettings(out=str(tmp_path / "out"), **change)
    with pytest.raises(TrainingError, match=message):
        dpo(settings)
    assert not (tmp_path / "out").exists()
