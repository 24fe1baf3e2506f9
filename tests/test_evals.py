"""Eval suites end to end: a real server process (tiny models), the runner's files, compare,
resume, the checkpoint target, and the CLI's errors."""

from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path

import pytest

from backend.client import ChatClient
from evals.cli import main as evals_main
from evals.compare import compare_runs, markdown_comparison
from evals.results import load_results
from evals.runner import ROWS_FILE, run_suite
from evals.suites import SuiteConfig
from evals.targets import CheckpointTarget, LiveTarget


@pytest.fixture
def live(tiny_server):
    target = LiveTarget(tiny_server.target, model="tiny", concurrency=2)
    yield target
    target.close()


def test_docs_qa_on_a_server_writes_results_that_recompute(
    live, eval_corpus, tmp_path, tiny_evals_dir, tiny_server
):
    config = SuiteConfig(size=4, corpus=eval_corpus, max_tokens=24)
    seen = []
    outcome = run_suite("docs-qa", live, config, out_root=tmp_path,
                        progress=lambda done, total, _row: seen.append((done, total)))  # fmt: skip
    data = json.loads(outcome.results_path.read_text())
    items = data["items"]
    assert len(items) == 4 and seen[0] == (0, 4) and seen[-1] == (4, 4)
    for name in ("f1", "rouge_l", "exact_match"):
        recomputed = statistics.fmean(row["scores"][name] for row in items)
        agg = data["aggregates"][name]
        assert agg["value"] == pytest.approx(recomputed)
        assert agg["n"] == 4
        assert agg["ci_low"] <= agg["value"] <= agg["ci_high"]
    # The random tiny model's bytes rarely form whole characters: some answers are empty.
    assert all(row["reference"] for row in items) and any(row["output"] for row in items)
    assert data["suite_version"] == "1" and data["model"] == "tiny"
    assert data["settings"]["concurrency"] == 2 and data["settings"]["max_tokens"] == 24
    assert data["git_revision"] and data["started_at"] and data["finished_at"]
    assert outcome.run_dir.name.endswith("-docs-qa-tiny")
    assert "# docs-qa (v1) on tiny" in outcome.report_path.read_text()
    # the copy reached the model's evals/ through the server and comes back in its card
    with ChatClient(tiny_server.target) as client:
        card = client.get_model("tiny")
        stored = client.all_eval_rows(f"{outcome.run_dir.name}.json", "tiny")
    assert {s.name for s in card.eval_summaries} >= {f"{outcome.run_dir.name}.json"}
    assert [json.loads(row) for row in stored] == items
    # and the run is in the daily log
    log = next(Path(os.environ["CHATFORGE_DAILY_LOG"]).glob("*.md")).read_text()
    assert "eval: docs-qa on tiny" in log and str(outcome.run_dir.name) in log


def test_perplexity_is_bits_per_byte_from_the_rows(live, eval_corpus, tmp_path):
    config = SuiteConfig(size=3, corpus=eval_corpus)
    result = run_suite("perplexity", live, config, out_root=tmp_path, record=False).result
    rows = result.rows
    nats = sum(r.scores["nats"] for r in rows)
    size = sum(r.scores["bytes"] for r in rows)
    assert result.aggregates["bits_per_byte"].value == pytest.approx(nats / size / math.log(2))
    assert all(r.scores["nats"] > 0 for r in rows)


def test_choice_matches_between_server_and_checkpoint(
    live, eval_corpus, tmp_path, tiny_model_dir, tiny_evals_dir
):
    config = SuiteConfig(size=3, corpus=eval_corpus)
    served = run_suite("choice", live, config, out_root=tmp_path, record=False).result
    checkpoint = CheckpointTarget(tiny_model_dir, model="tiny")
    stored = run_suite("choice", checkpoint, config, out_root=tmp_path)
    on_disk = stored.result
    assert [r.id for r in served.rows] == [r.id for r in on_disk.rows]
    for a, b in zip(served.rows, on_disk.rows, strict=True):
        assert a.extra["mean_logprobs"] == pytest.approx(b.extra["mean_logprobs"], abs=1e-4)
        assert a.label == b.label and a.prediction == b.prediction
        assert a.scores["accuracy"] in (0.0, 0.25, 1 / 3, 0.5, 1.0)
    assert served.aggregates["accuracy"].value == pytest.approx(
        statistics.fmean(r.scores["accuracy"] for r in served.rows)
    )
    # a checkpoint target writes its copy into its own folder
    assert Path(stored.model_copy).parent == tiny_evals_dir
    assert json.loads(Path(stored.model_copy).read_text())["suite"] == "choice"


def test_smoke_passes_on_a_healthy_server(live, tmp_path):
    result = run_suite("smoke", live, out_root=tmp_path, record=False).result
    assert {r.id: r.passed for r in result.rows} == dict.fromkeys(
        ["serving", "listed", "card", "streams", "refuses-bad-request", "scores"], True
    )
    assert result.aggregates["pass_rate"].value == 1.0


def test_latency_follows_vllm_definitions(live, tmp_path):
    config = SuiteConfig(size=4, max_tokens=6)
    result = run_suite("latency", live, config, out_root=tmp_path, record=False).result
    for row in result.rows:
        (ttft,), (e2el,), (tpot,) = (row.samples[k] for k in ("ttft_ms", "e2el_ms", "tpot_ms"))
        tokens = row.scores["output_tokens"]
        assert tokens == 6  # the tiny model never ends early
        assert 0 < ttft <= e2el
        assert tpot == pytest.approx((e2el - ttft) / (tokens - 1))
        assert len(row.samples["itl_ms"]) == row.extra["chunks"] - 1
    pooled = [g for row in result.rows for g in row.samples["itl_ms"]]
    assert result.aggregates["mean_itl_ms"].value == pytest.approx(statistics.fmean(pooled))
    assert result.aggregates["median_ttft_ms"].value == pytest.approx(
        statistics.median(row.samples["ttft_ms"][0] for row in result.rows)
    )


def test_compare_two_models_pairs_items_and_lists_changes(tiny_server, eval_corpus, tmp_path):
    config = SuiteConfig(size=4, corpus=eval_corpus)
    runs = {}
    for model in ("tiny", "tiny-b"):
        target = LiveTarget(tiny_server.target, model=model)
        runs[model] = run_suite("choice", target, config, out_root=tmp_path, record=False)
        target.close()
    a, b = runs["tiny"].result, runs["tiny-b"].result
    comparison = compare_runs(a, b)
    assert comparison.shared == 4 and comparison.only_a == comparison.only_b == 0
    accuracy = next(d for d in comparison.deltas if d.name == "accuracy")
    assert accuracy.delta == pytest.approx(
        b.aggregates["accuracy"].value - a.aggregates["accuracy"].value
    )
    flipped = {r.id for r, s in zip(a.rows, b.rows, strict=True) if r.passed != s.passed}
    assert {c.id for c in comparison.changed} == flipped
    text = markdown_comparison(comparison, "A", "B")
    assert "| accuracy |" in text and "tiny (A) vs tiny-b (B)" in text
    # the CLI prints the same comparison from the two run folders
    out = tmp_path / "compare.md"
    assert evals_main(["compare", str(runs["tiny"].run_dir), str(runs["tiny-b"].run_dir),
                       "--out", str(out)]) == 0  # fmt: skip
    assert "| accuracy |" in out.read_text()


def test_an_interrupted_run_resumes_without_redoing_items(live, eval_corpus, tmp_path):
    config = SuiteConfig(size=4, corpus=eval_corpus)
    first = run_suite("perplexity", live, config, out_root=tmp_path, record=False)
    rows_file = first.run_dir / ROWS_FILE
    lines = rows_file.read_text().splitlines()
    rows_file.write_text("\n".join(lines[:2]) + "\n" + lines[2][:10])  # cut mid-line
    first.results_path.unlink()
    progress = []
    again = run_suite("perplexity", live, config, out_root=tmp_path, record=False,
                      resume=first.run_dir,
                      progress=lambda d, t, row: progress.append((d, row is None)))  # fmt: skip
    assert progress == [(2, True), (3, False), (4, False)]  # two kept, then two run
    assert [r.id for r in again.result.rows] == [r.id for r in first.result.rows]
    assert load_results(first.run_dir).aggregates["bits_per_byte"].value == pytest.approx(
        first.result.aggregates["bits_per_byte"].value
    )
    with pytest.raises(Exception, match="resume with the same command and settings"):
        run_suite("perplexity", live, SuiteConfig(size=4, corpus=eval_corpus, seed=9),
                  out_root=tmp_path, resume=first.run_dir)  # fmt: skip


def test_failing_rpcs_become_error_rows_left_out_of_aggregates(live, eval_corpus, tmp_path):
    config = SuiteConfig(size=2, corpus=eval_corpus, max_tokens=5000)  # beyond the context
    outcome = run_suite("docs-qa", live, config, out_root=tmp_path, record=False)
    result = outcome.result
    assert result.errors == 2
    assert all(r.error.startswith("INVALID_ARGUMENT: sampling.max_tokens") for r in result.rows)
    assert result.aggregates["f1"].n == 0 and result.aggregates["f1"].value is None
    assert "errors: 2" in outcome.report_path.read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "nonsense"], "unknown suite 'nonsense'"),
        (["run", "docs-qa", "--target", "not-a-target"], "give a server as HOST:PORT"),
        (["compare", "/nowhere/a", "/nowhere/b"], "not found"),
        (["report", "--root", "/nowhere"], "no runs under /nowhere"),
        (["run", "docs-qa", "--sampling", "heat=3"], "give `server` or KEY=VALUE pairs"),
        (["run", "docs-qa", "--sampling", "temperature=hot"], "'hot' is not a number"),
    ],
)
def test_cli_errors_are_one_line(argv, message, capsys):
    assert evals_main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_refuses_server_suites_on_a_checkpoint_and_missing_corpus(tiny_model_dir, capsys):
    assert evals_main(["run", "smoke", "--target", str(tiny_model_dir)]) == 2
    assert "measures a running server" in capsys.readouterr().err
    argv = ["run", "docs-qa", "--target", str(tiny_model_dir), "--corpus", "/nowhere/corpus"]
    assert evals_main(argv) == 2
    assert "python -m training data" in capsys.readouterr().err


def test_cli_run_prints_the_table_and_report_lists_runs(tiny_server, eval_corpus, tmp_path, capsys):
    argv = ["run", "perplexity", "--target", tiny_server.target, "--model", "tiny-b", "--size",
            "2", "--corpus", str(eval_corpus), "--out", str(tmp_path), "--no-record"]  # fmt: skip
    assert evals_main(argv) == 0
    out = capsys.readouterr().out
    assert "perplexity v1 on tiny-b: 2 items, 0 errors" in out and "| bits_per_byte |" in out
    assert evals_main(["report", "--root", str(tmp_path)]) == 0
    assert "| perplexity v1 | tiny-b | 2 |" in capsys.readouterr().out


def test_checkpoint_target_loads_a_peft_adapter_onto_its_base(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    lora = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    lora.save_pretrained(tmp_path / "adapter")  # names tiny_model_dir as its base
    adapter = CheckpointTarget(tmp_path / "adapter")
    plain = CheckpointTarget(tiny_model_dir)
    assert adapter.describe()["path"].endswith("adapter")
    # a fresh LoRA (B = 0) leaves the base's outputs unchanged
    texts = ["héllo wörld", "The quick brown fox."]
    for a, b in zip(adapter.score(texts), plain.score(texts), strict=True):
        assert a.tokens == b.tokens and a.logprob == pytest.approx(b.logprob, abs=1e-4)
    answer = adapter.chat([{"role": "user", "content": "Hi"}], max_tokens=5)
    assert answer.completion_tokens == 5 and answer.finish_reason == "LENGTH"


def test_checkpoint_target_loads_quantized_weights_as_the_server_does(tiny_model_dir):
    plain = CheckpointTarget(tiny_model_dir)
    dynamic = CheckpointTarget(tiny_model_dir, quantization="int8-dynamic")
    assert "quantized" in type(dynamic.lm.model.layers[0].mlp.up_proj).__module__
    (a,), (b,) = plain.score(["The quick brown fox."]), dynamic.score(["The quick brown fox."])
    assert a.tokens == b.tokens and a.logprob != b.logprob
    with pytest.raises(ValueError, match="bitsandbytes on a CUDA GPU"):
        CheckpointTarget(tiny_model_dir, quantization="nf4", device="cpu")


def test_docs_qa_decodes_with_the_sampling_asked_for(tiny_model_dir, live, eval_corpus, tmp_path):
    """--sampling reaches the decoder, on a checkpoint and through the server, and is
    recorded with the run; the server's card carries a model's own defaults."""
    checkpoint = CheckpointTarget(tiny_model_dir)

    def answers(target, sampling) -> list[str]:
        options = {} if sampling is None else {"sampling": sampling}
        config = SuiteConfig(size=3, corpus=eval_corpus, max_tokens=12, options=options)
        result = run_suite("docs-qa", target, config, out_root=tmp_path, record=False).result
        assert result.settings["sampling"] == (
            sampling if sampling is not None else {"temperature": 0.0}
        )
        return [row.output for row in result.rows]

    greedy = answers(checkpoint, None)
    assert answers(checkpoint, {"temperature": 0.0, "repetition_penalty": 2.0}) != greedy
    assert answers(live, {"temperature": 0.0}) == answers(live, None)
    with ChatClient(live.address) as client:
        assert round(client.get_model("tiny-b").default_sampling.temperature, 4) == 0.3
