"""Fine-tuning with LoRA on a tiny random base: the loss falls, the adapter round-trips
through the server, merging is exact, and bad arguments or data get clear errors."""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from backend.client import ChatClient
from backend.launcher import BackendProcess
from backend.model_loader import load_models
from backend.registry import load_registry
from backend.sampling import SamplingConfig
from training.__main__ import main as training_main
from training.chat_data import IGNORE_INDEX, encode_chat, load_chat_data
from training.corpus import build_corpus
from training.errors import TrainingError
from training.finetune import FinetuneConfig, finetune

FIXTURE_CORPUS = Path(__file__).parent / "training" / "corpus"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def _chats(n: int) -> list[dict]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"What is the capital of France? ({i})"},
                {"role": "assistant", "content": "Paris is the capital of France."},
            ]
        }
        for i in range(n)
    ]


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    """Four LoRA steps on the tiny model with a high learning rate, merged as well."""
    root = tmp_path_factory.mktemp("finetune")
    data = _write_jsonl(root / "chats.jsonl", _chats(40))
    config = FinetuneConfig(
        base=str(tiny_model_dir),
        data=str(data),
        out=str(root / "run"),
        name="tiny-lora",
        max_steps=4,
        batch_size=8,
        learning_rate=1e-2,
        warmup=0,
        schedule="constant",
        rank=8,
        merge=True,
        registry=str(root / "runs-models.yaml"),
    )
    result = finetune(config)
    return root, result


def _logits(model, ids: list[int], **kwargs) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids]), **kwargs).logits[0].float()


def _prompt_ids(tokenizer) -> list[int]:
    text = tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_lora_training_lowers_the_loss_and_writes_the_contract(trained, tiny_model_dir):
    root, result = trained
    rows = [json.loads(line) for line in (root / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train_loss"] for r in rows if "train_loss" in r]
    assert len(losses) >= 3 and losses[-1] < losses[0] * 0.8
    assert any("val_loss" in r for r in rows)
    adapter = root / "run" / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_model_dir)
    assert config["r"] == 8
    for folder in (adapter, root / "run" / "merged"):
        run = json.loads((folder / "run.json").read_text())
        assert run["config"]["method"] == "lora" and run["final_metrics"]["steps"] == 4
        assert (folder / "metrics.jsonl").read_text() == (
            root / "run" / "metrics.jsonl"
        ).read_text()
    registered = load_registry(root / "runs-models.yaml").models
    assert Path(registered["tiny-lora"].adapter) == adapter
    assert Path(registered["tiny-lora-merged"].checkpoint) == root / "run" / "merged"


def test_merged_checkpoint_matches_base_plus_adapter(trained):
    root, result = trained
    ids = _prompt_ids(result.tokenizer)
    merged = AutoModelForCausalLM.from_pretrained(root / "run" / "merged")
    result.model.eval()
    expected = _logits(result.model, ids)
    assert torch.allclose(_logits(merged, ids), expected, atol=1e-4)
    with result.model.disable_adapter():
        base = _logits(result.model, ids)
    assert not torch.allclose(base, expected, atol=1e-2)  # the adapter does change the model


def test_served_adapter_has_the_trained_logits(trained, tiny_model_dir, tmp_path):
    """The backend's loader (base + adapter from models.yaml) computes the same logits as the
    model at the end of training."""
    root, result = trained
    registry = tmp_path / "models.yaml"
    registry.write_text(
        f"models:\n  tiny:\n    checkpoint: {tiny_model_dir}\n"
        f"  docs:\n    base: tiny\n    adapter: {root / 'run' / 'adapter'}\n"
    )
    loaded = {m.name: m for m in load_models(load_registry(registry).models)}
    try:
        assert loaded["docs"].engine is loaded["tiny"].engine  # one base, one engine
        ids = _prompt_ids(result.tokenizer)
        served = loaded["docs"].model
        result.model.eval()
        expected = _logits(result.model, ids)
        assert torch.allclose(_logits(served, ids, adapter_names=["docs"]), expected, atol=1e-5)
        with result.model.disable_adapter():
            base = _logits(result.model, ids)
        assert torch.allclose(_logits(served, ids, adapter_names=["__base__"]), base, atol=1e-5)
    finally:
        loaded["tiny"].engine.stop()


def _random_adapter(base_dir: Path, out: Path, seed: int) -> Path:
    """A LoRA adapter with random (non-zero) weights, saved as PEFT does."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj", "down_proj"])
    config.init_lora_weights = False
    get_peft_model(model, config).save_pretrained(out)
    return out


def _greedy_alone(base_dir: Path, adapter: Path | None, prompt: list[int], n: int) -> list[int]:
    """Reference greedy ids from a fresh model with only this adapter, merged."""
    from peft import PeftModel

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    out = model.generate(torch.tensor([prompt]), max_new_tokens=n, do_sample=False)
    return out[0, len(prompt) :].tolist()


def _streamed_text(tokenizer, ids: list[int]) -> str:
    """The text the server streams for `ids`: whole characters only (backend/detokenize.py)."""
    from backend.detokenize import IncrementalDetokenizer
    from backend.text_codec import TextCodec

    detokenizer = IncrementalDetokenizer(TextCodec(tokenizer))
    return "".join(detokenizer.add(i) for i in ids) + detokenizer.flush()


def test_two_adapters_interleaved_on_one_server_match_each_alone(tiny_model_dir, tmp_path):
    """Concurrent streams on two adapters and the base share one engine; each gets exactly
    what its model gives alone."""
    a = _random_adapter(tiny_model_dir, tmp_path / "a", seed=1)
    b = _random_adapter(tiny_model_dir, tmp_path / "b", seed=2)
    registry = tmp_path / "models.yaml"
    registry.write_text(
        f"models:\n  tiny:\n    checkpoint: {tiny_model_dir}\n    default: true\n"
        f"  ada:\n    base: tiny\n    adapter: {a}\n  adb:\n    base: tiny\n    adapter: {b}\n"
    )
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt = _prompt_ids(tok)
    n = 24
    expected = {
        "tiny": _greedy_alone(tiny_model_dir, None, prompt, n),
        "ada": _greedy_alone(tiny_model_dir, a, prompt, n),
        "adb": _greedy_alone(tiny_model_dir, b, prompt, n),
    }
    assert len({tuple(v) for v in expected.values()}) == 3  # three different models
    texts = {k: _streamed_text(tok, v) for k, v in expected.items()}
    results: dict[str, str] = {}
    with BackendProcess(registry, log_path=tmp_path / "server.log") as server:

        def ask(model: str) -> None:
            with ChatClient(server.target) as client:
                results[model] = "".join(
                    e.delta.text
                    for e in client.chat(
                        QUESTION, model=model, sampling={"temperature": 0.0, "max_tokens": n}
                    )
                    if e.WhichOneof("event") == "delta"
                )

        threads = [threading.Thread(target=ask, args=(m,)) for m in expected for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert results == texts


def test_rows_of_different_adapters_share_a_forward_pass(tiny_model_dir, tmp_path):
    """Requests of two adapters and the base run as rows of the same steps (one forward
    pass, not one per adapter) and each still produces what it produces alone."""
    a = _random_adapter(tiny_model_dir, tmp_path / "a", seed=3)
    b = _random_adapter(tiny_model_dir, tmp_path / "b", seed=4)
    registry = tmp_path / "models.yaml"
    registry.write_text(
        f"models:\n  tiny:\n    checkpoint: {tiny_model_dir}\n"
        f"  ada:\n    base: tiny\n    adapter: {a}\n  adb:\n    base: tiny\n    adapter: {b}\n"
    )
    steps = []
    loaded = {
        m.name: m for m in load_models(load_registry(registry).models, lambda _, s: steps.append(s))
    }
    engine = loaded["tiny"].engine
    config = SamplingConfig(temperature=0.0, max_tokens=16)
    prompt = _prompt_ids(loaded["tiny"].codec.tokenizer)
    try:
        alone = {name: engine.generate(prompt, config, loaded[name].adapter) for name in loaded}
        steps.clear()
        together = {name: engine.submit(prompt, config, loaded[name].adapter) for name in loaded}
        assert {name: list(g) for name, g in together.items()} == alone
        assert max(step.rows for step in steps) == 3  # base, ada and adb in one pass
        assert alone["ada"] != alone["adb"] != alone["tiny"]
        with pytest.raises(ValueError, match="unknown adapter 'nope'"):
            engine.submit(prompt, config, "nope")
    finally:
        engine.stop()


def test_assistant_tokens_only_carry_labels(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello there."},
        {"role": "user", "content": "Name a fox."},
        {"role": "assistant", "content": "The quick brown fox."},
    ]
    row = encode_chat(tok, messages, max_length=512)
    labelled = [t for t in row["labels"] if t != IGNORE_INDEX]
    assert tok.decode(labelled) == "Hello there.<|im_end|>\nThe quick brown fox.<|im_end|>\n"
    assert len(row["input_ids"]) == len(row["labels"])
    assert encode_chat(tok, messages, max_length=8) is None  # cut before any answer


def test_docs_qa_set_keeps_the_corpus_split(tmp_path):
    corpus, _ = build_corpus(str(FIXTURE_CORPUS), tmp_path / "corpus", seed=3)
    splits = load_chat_data(str(corpus))
    from chatforge.corpus_files import load_questions

    for split in ("train", "val", "test"):
        questions = load_questions(corpus, split)
        chats = getattr(splits, split)
        assert [c[0]["content"] for c in chats] == [q.question for q in questions]
        assert [c[1]["content"] for c in chats] == [q.answer for q in questions]


def _run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = training_main(["finetune", *args])
    return code, capsys.readouterr().err


def test_malformed_rows_name_the_line_or_are_skipped(tmp_path, tiny_model_dir, capsys):
    rows = _chats(12)
    rows[4] = {"messages": [{"role": "robot", "content": "beep"}]}
    path = tmp_path / "bad.jsonl"
    _write_jsonl(path, rows)
    path.write_text(path.read_text() + "{not json\n")
    out = tmp_path / "out"
    code, err = _run_cli(
        ["--base", str(tiny_model_dir), "--data", str(path), "--out", str(out)], capsys
    )
    assert code == 2 and f"{path}:5: messages[0].role is 'robot'" in err and "--skip-bad" in err
    assert not out.exists()
    splits = load_chat_data(str(path), skip_bad=True)
    assert splits.skipped == 2 and len(splits.train) + len(splits.val) == 11


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--target-modules", "q_proj,wq"], "--target-modules: wq not in the base model"),
        (["--rank", "0"], "--rank must be at least 1"),
        (["--data", "/nonexistent/chats.jsonl"], "--data /nonexistent/chats.jsonl: no such file"),
        (["--method", "qlora"], "needs a CUDA GPU"),
        (["--base", "no-such-model"], "'no-such-model' is not a folder"),
    ],
)
def test_bad_arguments_give_clear_errors(extra, message, tmp_path, tiny_model_dir, capsys):
    if "--method" in extra and torch.cuda.is_available():
        pytest.skip("qlora runs where CUDA is present")
    data = _write_jsonl(tmp_path / "chats.jsonl", _chats(10))
    out = tmp_path / "out"
    args = ["--base", str(tiny_model_dir), "--data", str(data), "--out", str(out), *extra]
    code, err = _run_cli(args, capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert not out.exists()


def test_existing_output_needs_resume(trained, tiny_model_dir, capsys):
    root, _ = trained
    data = root / "chats.jsonl"
    args = ["--base", str(tiny_model_dir), "--data", str(data), "--out", str(root / "run")]
    code, err = _run_cli(args, capsys)
    assert code == 2 and "is not empty: pass --resume" in err


def test_registry_rejects_bad_adapter_entries(tmp_path, tiny_model_dir):
    from backend.registry import RegistryError

    cases = {
        "  a:\n    base: nothere\n    adapter: x\n": "base `nothere` is not a model",
        "  a:\n    base: tiny\n": "`base` and `adapter` go together",
        "  a:\n    base: tiny\n    adapter: x\n    dtype: float16\n": "set dtype on `tiny`",
        "  a:\n    checkpoint: x\n    quantization: int4\n": "quantization",
        "  a:\n    base: tiny\n    adapter: x\n  b:\n    base: a\n    adapter: y\n": "do not stack",
    }
    for entry, message in cases.items():
        path = tmp_path / "models.yaml"
        path.write_text(f"models:\n  tiny:\n    checkpoint: {tiny_model_dir}\n{entry}")
        with pytest.raises(RegistryError, match=message):
            load_registry(path)


def test_missing_adapter_folder_is_named(tmp_path, tiny_model_dir):
    path = tmp_path / "models.yaml"
    path.write_text(
        f"models:\n  tiny:\n    checkpoint: {tiny_model_dir}\n"
        f"  a:\n    base: tiny\n    adapter: {tmp_path / 'gone'}\n"
    )
    with pytest.raises(FileNotFoundError, match="is not a PEFT adapter folder"):
        list(load_models(load_registry(path).models))


def test_a_file_without_conversations_is_an_error(tmp_path):
    with pytest.raises(TrainingError, match="no usable conversation"):
        load_chat_data(str(_write_jsonl(tmp_path / "empty.jsonl", [])))


def test_resume_logs_each_step_once(tmp_path, tiny_model_dir):
    """Cut short after its step-2 checkpoint, a resumed run's metrics.jsonl has the rows of
    an uninterrupted run: those after the checkpoint are trimmed, then logged once more."""
    data = _write_jsonl(tmp_path / "chats.jsonl", _chats(24))
    config = FinetuneConfig(
        base=str(tiny_model_dir), data=str(data), out=str(tmp_path / "run"), name="resumed",
        max_steps=4, batch_size=8, eval_steps=2, warmup=0, rank=4,
        registry=str(tmp_path / "runs-models.yaml"),
    )  # fmt: skip
    finetune(config)
    metrics = tmp_path / "run" / "metrics.jsonl"

    def shape() -> list[tuple[int, bool, bool]]:
        rows = [json.loads(line) for line in metrics.read_text().splitlines()]
        return [(r["step"], "train_loss" in r, "val_loss" in r) for r in rows]

    uninterrupted = shape()
    assert max(step for step, _, _ in uninterrupted) == 4
    for checkpoint in (tmp_path / "run" / "trainer").glob("checkpoint-4"):
        shutil.rmtree(checkpoint)  # as if the run died before saving step 4
    finetune(dataclasses.replace(config, resume=True))
    assert shape() == uninterrupted
