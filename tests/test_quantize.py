"""Quantized serving: each CPU quantization path loads and generates, the CUDA-only ones
refuse clearly; `python -m evals quantize` end to end on a tiny model: the table, where
it lands (the model's evals/, GetModel, the UI's list of runs, daily-log), resuming, and
clear errors for bad arguments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from backend.client import ChatClient
from backend.model_loader import load_models
from backend.registry import load_registry
from backend.sampling import SamplingConfig
from chatforge.journal import journal_dir
from evals.cli import main as evals_main
from evals.quantize import VariantRow, disk_bytes, tensor_bytes, verdict
from evals.results import load_results
from evals.runner import runs_dir
from evals.scoring import repeated_trigrams


def _registry(tmp_path, tiny_model_dir, quantization: str):
    path = tmp_path / "models.yaml"
    path.write_text(
        f"models:\n  q:\n    checkpoint: {tiny_model_dir}\n    quantization: {quantization}\n"
        f"    device: cpu\n"
    )
    return load_registry(path)


@pytest.mark.parametrize("quantization", ["int8", "int8-dynamic"])
def test_cpu_quantization_loads_and_generates(quantization, tmp_path, tiny_model_dir):
    (loaded,) = load_models(_registry(tmp_path, tiny_model_dir, quantization).models)
    (plain,) = load_models(_registry(tmp_path, tiny_model_dir, "none").models)
    try:
        prompt = loaded.codec.tokenizer("What is the capital of France?")["input_ids"]
        ids = loaded.engine.generate(prompt, SamplingConfig(temperature=0.0, max_tokens=12))
        assert len(ids) == 12
        assert tensor_bytes(loaded.model) < 0.6 * tensor_bytes(plain.model)
        # ... counting every tensor once: torch.save's file is the same bytes plus headers
        assert (
            0.9 * disk_bytes(loaded.model) < tensor_bytes(loaded.model) <= disk_bytes(loaded.model)
        )
        # the weights really changed representation
        linear = loaded.model.model.layers[0].self_attn.q_proj
        assert type(linear) is not torch.nn.Linear or type(linear.weight) is not torch.nn.Parameter
    finally:
        loaded.engine.stop()
        plain.engine.stop()


@pytest.mark.parametrize("quantization", ["bnb-int8", "nf4"])
def test_bitsandbytes_quantization_on_cpu_says_what_it_needs(
    quantization, tmp_path, tiny_model_dir
):
    with pytest.raises(
        ValueError, match=f"quantization `{quantization}` runs through bitsandbytes on a CUDA GPU"
    ):
        list(load_models(_registry(tmp_path, tiny_model_dir, quantization).models))


def test_repeated_trigrams_spot_loops():
    assert repeated_trigrams(["the list is a sequence of items"]) == 0.0
    looped = ["it is it is it is it is it is"]
    assert repeated_trigrams(looped) > 0.6


def test_verdict_flags_drift_quality_and_perplexity():
    base = VariantRow("none", 500, 500, 20, 1.0, 0.30, 0.25, 1.0, 0.0)
    fine = VariantRow("int8", 150, 150, 25, 1.01, 0.29, 0.25, 0.8, 0.0)
    drift = VariantRow("int8-dynamic", 150, 150, 30, 1.02, 0.28, 0.24, 0.3, 0.05)
    loops = VariantRow("int8-dynamic", 150, 150, 30, 1.02, 0.28, 0.24, 0.6, 0.2)
    worse = VariantRow("nf4", 90, 90, 20, 1.2, 0.1, 0.1, 0.6, 0.0)
    assert verdict(fine, base) == "ok"
    assert verdict(drift, base) == "DEGRADED: answers drift (agreement 0.30)"
    assert verdict(loops, base) == "DEGRADED: answers loop (repeats 0.20 vs 0.00)"
    assert "docs-QA F1" in verdict(worse, base) and "bits/byte" in verdict(worse, base)


# --- python -m evals quantize, end to end on the tiny model ---------------------------

MEASURED = ["none", "int8", "int8-dynamic"]
COLUMNS = {"disk_mb", "memory_mb", "tokens_per_s", "bits_per_byte", "docs_qa_f1",
           "docs_qa_rouge_l", "agreement", "repeats"}  # fmt: skip


def _quantize(model_dir: Path, corpus: Path, *extra: str) -> int:
    return evals_main(
        ["quantize", "--model", str(model_dir), "--corpus", str(corpus), "--qa-size", "2",
         "--ppl-size", "2", "--max-tokens", "8", "--speed-rounds", "2", "--speed-tokens", "4",
         *extra]
    )  # fmt: skip


@pytest.fixture
def quantization_table(tiny_model_dir, eval_corpus, tiny_evals_dir, capsys):
    """The quantize command run on the tiny model the tiny server serves; its table (the
    .json through `tiny_evals_dir`, the .md here) is removed afterwards."""
    code = _quantize(tiny_model_dir, eval_corpus)
    out = capsys.readouterr().out
    yield code, out, tiny_evals_dir / "quantization.json"
    (tiny_evals_dir / "quantization.md").unlink(missing_ok=True)


def test_quantize_writes_the_table_where_cards_and_the_ui_read_it(
    quantization_table, tiny_server, eval_corpus, tiny_model_dir, capsys
):
    code, out, path = quantization_table
    assert code == 0
    table = load_results(path)  # an evals results file: the UI and `evals report` read it
    assert table.suite == "quantization" and table.model == tiny_model_dir.name
    rows = {r.id: r for r in table.rows}
    assert list(rows) == [*MEASURED, "bnb-int8", "nf4"]

    none = rows["none"]
    for variant in MEASURED:
        row = rows[variant]
        assert set(row.scores) >= COLUMNS, variant
        assert len(row.extra["speed_samples"]) == 2  # --speed-rounds
        assert row.scores["tokens_per_s"] == pytest.approx(max(row.extra["speed_samples"]), 0.01)
        assert row.passed == (row.extra["verdict"] == "ok")
        assert row.reference == none.output and row.output  # the long answers side by side
        # the perplexity and docs-QA numbers are the eval suites' own runs of this variant
        ppl = load_results(row.extra["runs"]["perplexity"])
        qa = load_results(row.extra["runs"]["docs-qa"])
        assert ppl.model == qa.model == f"{tiny_model_dir.name}[{variant}]"
        assert row.scores["bits_per_byte"] == ppl.headline()["bits_per_byte"]
        assert row.scores["docs_qa_f1"] == qa.headline()["f1"]
        assert len(qa.rows) == 2 and qa.settings["max_tokens"] == 8
    assert none.scores["agreement"] == 1.0 and none.passed
    for variant in ("int8", "int8-dynamic"):
        assert rows[variant].scores["memory_mb"] < 0.6 * none.scores["memory_mb"]
        assert rows[variant].scores["disk_mb"] < 0.6 * none.scores["disk_mb"]
    assert table.aggregates["degraded"].n == 2  # the quantized variants, not the reference

    # CUDA-only variants are listed as skipped, with the loader's reason
    for variant in ("bnb-int8", "nf4"):
        assert not rows[variant].scores and rows[variant].passed is None
        assert "runs through bitsandbytes on a CUDA GPU" in rows[variant].extra["skipped"]
        assert rows[variant].output.startswith("skipped:")

    # the Markdown table beside it and on stdout, one line per variant
    markdown = path.with_suffix(".md").read_text()
    for variant in rows:
        assert f"| {variant} |" in markdown and f"| {variant} |" in out
    assert markdown.count("skipped: model") == 2
    # the daily-log entry names the table
    log = "".join(p.read_text() for p in journal_dir().glob("*.md"))
    assert f"eval: quantized variants of {tiny_model_dir}" in log
    assert f"artifact: `{path}`" in log

    # GetModel carries it, and the UI's Evals tab lists and parses it
    from ui.eval_client import fetch_run
    from ui.evals_tab import items_frame

    with ChatClient(tiny_server.target) as client:
        card = client.get_model("tiny")
        assert "quantization.json" in [e.name for e in card.eval_summaries]
        shown = fetch_run(client, "tiny/quantization.json")
    frame = items_frame(shown, failures_only=False)
    assert list(frame["id"]) == list(rows)
    assert list(frame["status"][:3]) == ["pass" if rows[v].passed else "fail" for v in MEASURED]

    # resuming the finished run measures nothing again and gives the same table
    run_dir = Path(none.extra["runs"]["perplexity"]).parent.parent
    before = sorted(run_dir.rglob("results.json"))
    assert _quantize(tiny_model_dir, eval_corpus, "--resume", str(run_dir)) == 0
    capsys.readouterr()
    again = load_results(path)
    assert sorted(run_dir.rglob("results.json")) == before
    assert [r.scores for r in again.rows] == [r.scores for r in table.rows]
    # ... and a resume with other options is refused
    assert _quantize(tiny_model_dir, eval_corpus, "--qa-size", "3", "--resume", str(run_dir)) == 2
    assert "resume with the same command and settings" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--variants", "int4"], "--variants: unknown int4; choose from int8, int8-dynamic"),
        (["--qa-size", "0"], "--qa-size must be at least 1, not 0"),
        (["--corpus", "/nonexistent"], "no corpus there; build it first"),
        (["--model", "/nonexistent-model"], "no such folder, and no model of that name"),
        (["--resume", "/tmp"], "no quantize.json there"),
    ],
)
def test_bad_arguments_are_clear_errors_and_write_nothing(
    extra, message, tiny_model_dir, eval_corpus, capsys
):
    runs_before = set(runs_dir().iterdir()) if runs_dir().is_dir() else set()
    evals_before = sorted((tiny_model_dir / "evals").glob("*"))
    args = ["--model", str(tiny_model_dir), "--corpus", str(eval_corpus), *extra]
    assert evals_main(["quantize", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert (set(runs_dir().iterdir()) if runs_dir().is_dir() else set()) == runs_before
    assert sorted((tiny_model_dir / "evals").glob("*")) == evals_before


def test_an_adapter_folder_is_refused(tmp_path, eval_corpus, capsys):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "x"}))
    assert _quantize(adapter, eval_corpus) == 2
    assert "is a LoRA adapter: quantize a full checkpoint" in capsys.readouterr().err
