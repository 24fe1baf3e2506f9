"""The Evals and Training tabs in headless Chromium: a real `python -m ui` process talking
over gRPC to a real backend process (`tiny_server`). Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from backend.client import ChatClient
from evals.results import MetricSpec, Row, RunResult
from evals.runner import run_suite
from evals.suites import SuiteConfig
from evals.targets import LiveTarget
from tests.browser import choose
from ui.evals_tab import confusion_figure

pytestmark = pytest.mark.slow
expect.set_options(timeout=60_000)  # waiting for the page, not timing it: shared CPUs


def open_tab(page: Page, ui, name: str) -> None:
    page.goto(ui.url)
    page.get_by_role("tab", name=name).click()


@pytest.fixture
def stored_choice_runs(tiny_server, eval_corpus, tiny_evals_dir, tmp_path):
    """Two `choice` runs stored in the tiny model's evals/ through RecordEval."""
    outcomes = []
    for model in ("tiny", "tiny-b"):
        target = LiveTarget(tiny_server.target, model=model)
        outcomes.append(run_suite("choice", target, SuiteConfig(size=4, corpus=eval_corpus),
                                  out_root=tmp_path, record=False))  # fmt: skip
        target.close()
    with ChatClient(tiny_server.target) as client:
        for outcome in outcomes:
            client.record_eval(outcome.run_dir.name + ".json",
                               outcome.results_path.read_text(), model="tiny")  # fmt: skip
    return [f"tiny/{o.run_dir.name}.json" for o in outcomes]


def test_evals_tab_runs_smoke_and_shows_stored_runs(
    page, ui, stored_choice_runs, tiny_evals_dir, artifacts_dir
):
    open_tab(page, ui, "Evals")
    expect(page.locator("#evals-status")).to_contain_text("2 models served, 2 stored runs")
    # before any run: the tables' real headers (no "1 2 3")
    expect(page.locator("#evals-metrics th").first).to_contain_text("model")
    expect(page.locator("#evals-items thead")).to_contain_text("reference")
    page.locator("#evals-run").click()
    expect(page.locator("#evals-status")).to_contain_text("Finished smoke")
    expect(page.locator("#evals-status")).to_contain_text("6 items, 0 errors")
    expect(page.locator("#evals-confusion")).to_be_hidden()  # smoke has no classes
    metrics = page.locator("#evals-metrics")
    expect(metrics).to_contain_text("pass_rate")
    expect(metrics).to_contain_text("tiny")
    items = page.locator("#evals-items")
    expect(items).to_contain_text("refuses-bad-request")
    expect(items).to_contain_text("INVALID_ARGUMENT")
    page.screenshot(path=artifacts_dir / "ui-evals-smoke.png", full_page=True)
    # the run reached the model's folder through the server
    assert list(tiny_evals_dir.glob("*-smoke-tiny.json"))

    # a stored classification run, read back over gRPC: items and a confusion matrix
    choose(page, "evals-inspect", stored_choice_runs[0])
    expect(page.locator("#evals-run-metrics")).to_contain_text("choice v1 on tiny")
    expect(page.locator("#evals-run-metrics")).to_contain_text("centered_accuracy")
    expect(items).to_contain_text("accuracy")
    expect(page.locator("#evals-confusion img")).to_be_visible()
    page.locator("#evals-failures input").check()
    # only failures are left: no row passed (the table redraws once the event is done)
    expect(items.locator("td").filter(has_text=re.compile(r"^\s*pass\s*$"))).to_have_count(0)
    expect(items).to_contain_text("fail")
    expect(page.locator("#evals-confusion img")).to_be_visible()
    page.wait_for_timeout(1000)  # let the redrawn table and plot paint before the screenshot
    expect(page.locator("#evals-confusion img")).to_be_visible()
    page.screenshot(path=artifacts_dir / "ui-evals-choice.png", full_page=True)

    # compare the two stored runs
    page.get_by_text("Compare two runs").click()
    choose(page, "evals-compare-a", stored_choice_runs[0])
    choose(page, "evals-compare-b", stored_choice_runs[1])
    page.locator("#evals-compare").click()
    comparison = page.locator("#evals-comparison")
    expect(comparison).to_contain_text("tiny (A) vs tiny-b (B)")
    expect(comparison).to_contain_text("accuracy")
    page.screenshot(path=artifacts_dir / "ui-evals-compare.png", full_page=True)


@pytest.fixture
def training_log(tiny_server, tmp_path):
    """A fixture lineage: tiny-b is an SFT run (metrics.jsonl, two epochs) whose run.json
    names its base, a pretraining run folder with a log of its own."""
    with ChatClient(tiny_server.target) as client:
        folder = Path(client.get_model("tiny-b").source)
    base = tmp_path / "scratch-base"
    base.mkdir()
    (base / "run.json").write_text(json.dumps({"kind": "pretrain"}))
    (base / "metrics.jsonl").write_text("".join(
        json.dumps({"step": s, "tokens_seen": s * 4000, "train_loss": 9 - s * 0.5,
                    "val_loss": 9.2 - s * 0.5}) + "\n" for s in range(1, 9)))  # fmt: skip
    rows = [{"step": s, "epoch": s / 5, "tokens_seen": s * 1000, "train_loss": 6 - s * 0.4,
             "lr": 1e-3 * min(1, s / 3), "tokens_per_second": 900 + s}
            for s in range(1, 11)]  # fmt: skip
    for row in rows[4::5]:
        row["val_loss"] = row["train_loss"] + 0.3 + 1e-7  # rounded in the table
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "run.json").write_text(json.dumps({"kind": "sft", "base": str(base)}))
    yield folder
    (folder / "metrics.jsonl").unlink()
    (folder / "run.json").unlink()


def test_training_tab_plots_a_lineage_and_chats_side_by_side(page, ui, training_log, artifacts_dir):
    open_tab(page, ui, "Training")
    status = page.locator("#training-status")
    expect(status).to_contain_text("tiny-b (pretrain scratch-base → sft tiny-b)")
    expect(page.locator("#training-curves img")).to_be_visible()
    summary = page.locator("#training-summary")
    expect(summary).to_contain_text("final train_loss")
    expect(summary).to_contain_text("2.3")  # the last val loss 6 - 10 * 0.4 + 0.3, rounded
    expect(summary).not_to_contain_text("2.3000001")
    page.get_by_text("tokens seen").click()
    expect(page.locator("#training-curves img")).to_be_visible()
    page.screenshot(path=artifacts_dir / "ui-training-curves.png", full_page=True)

    page.fill("#duel-max-tokens input[type=number]", "12")
    page.fill("#duel-input textarea", "Hello there")
    page.locator("#duel-send").click()
    for side, model in (("left", "tiny"), ("right", "tiny-b")):
        answer = page.locator(f"#duel-{side}")
        expect(answer).to_contain_text("finish")
        expect(answer).to_contain_text(model)
        expect(answer).to_contain_text("12 tokens")
    page.screenshot(path=artifacts_dir / "ui-training-duel.png", full_page=True)

    page.fill("#duel-max-tokens input[type=number]", "1024")
    page.fill("#duel-input textarea", "Tell me a long story")
    page.locator("#duel-send").click()
    expect(page.locator("#duel-left")).not_to_contain_text("12 tokens")  # the new answers
    page.locator("#duel-stop").click()
    for side in ("left", "right"):
        expect(page.locator(f"#duel-{side}")).to_contain_text("Stopped after")


def test_empty_tables_have_their_real_headers():
    from ui.evals_tab import items_frame, metrics_frame

    assert list(metrics_frame([]).columns)[:3] == ["model", "suite", "metric"]
    assert list(items_frame(None, False).columns) == [
        "id",
        "status",
        "input",
        "reference",
        "output",
    ]


def test_confusion_matrix_counts_gold_against_predicted():
    rows = [Row("1", label="A", prediction="A"), Row("2", label="A", prediction="B"),
            Row("3", label="B", prediction="B"), Row("4", label="C", error="gone")]  # fmt: skip
    result = RunResult("choice", "1", "m", {}, {}, [MetricSpec("a", "mean", "a", "")], rows)
    figure = confusion_figure(result)
    counts = figure.axes[0].images[0].get_array()
    assert counts.tolist() == [[1, 1], [0, 1]]  # the errored row is left out
    assert confusion_figure(RunResult("smoke", "1", "m", {}, {}, [], [Row("x")])) is None


def test_epoch_boundaries_and_the_step_fallback_are_drawn():
    from chat.v1 import chat_pb2
    from ui.training_tab import curves_figure, epoch_boundaries

    rows = [chat_pb2.TrainingMetric(step=s, epoch=s / 4, train_loss=5 - s / 10)
            for s in range(1, 10)]  # fmt: skip
    assert epoch_boundaries(rows) == [3, 7]  # steps 4 and 8 start epochs 1 and 2
    card = chat_pb2.ModelCard(name="m", metrics=rows)
    figure = curves_figure([card], "tokens seen")  # never logged: drawn against the step
    loss = figure.axes[0]
    assert [line.get_label() for line in loss.lines if not line.get_label().startswith("_")] == [
        "m train (x = step)"
    ]
    dotted = [line.get_xdata()[0] for line in loss.lines if line.get_linestyle() == ":"]
    assert dotted == [4, 8]
    assert curves_figure([chat_pb2.ModelCard(name="empty")], "step") is None


def test_a_lineage_is_drawn_stage_after_stage_train_and_val_apart():
    from chat.v1 import chat_pb2
    from ui.training_tab import curves_figure

    pretrain = [chat_pb2.TrainingMetric(step=s, train_loss=9 - s, val_loss=9.5 - s)
                for s in range(1, 6)]  # fmt: skip
    sft = [chat_pb2.TrainingMetric(step=s, train_loss=3 - s / 10) for s in range(1, 4)]
    card = chat_pb2.ModelCard(
        name="chat",
        run_json='{"kind": "sft"}',
        metrics=sft,
        lineage=[chat_pb2.TrainingStage(name="base", kind="pretrain", metrics=pretrain)],
    )
    loss = curves_figure([card], "step").axes[0]
    curves = [
        line for line in loss.lines if line.get_linestyle() == "-" and len(line.get_xdata()) > 2
    ]
    train = [line for line in curves if line.get_color() == "tab:blue"]
    val = [line for line in curves if line.get_color() == "tab:orange"]
    assert [list(line.get_xdata()) for line in train] == [[1, 2, 3, 4, 5], [6, 7, 8]]
    assert len(val) == 1  # only pretraining logged a val loss, in a colour of its own
    assert loss.get_legend() is not None
    assert {t.get_text() for t in loss.get_legend().get_texts()} == {"chat train", "chat val"}
    assert {t.get_text() for t in loss.texts} == {"pretrain base", "sft chat"}
