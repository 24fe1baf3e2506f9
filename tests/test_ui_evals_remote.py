"""The Evals tab as deployed: a UI from a venv holding only the UI's dependency set (no
torch, no corpus: the `ui_python` fixture) runs every suite on a backend that has the
data, in headless Chromium. The corpus, the retrieval collection and the questions are
known to the backend only (`serve --eval-arg`), so each suite can only have run there
(RunEval), and its results come back over gRPC (summaries, then rows): the items table
shows each run's first row as GetEvalRows returns it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from backend.client import ChatClient
from backend.launcher import BackendProcess
from evals.suites import SUITES
from tests.browser import choose, set_number
from tests.conftest import NO_CACHE, ingest
from ui.launcher import UiProcess

pytestmark = pytest.mark.slow
expect.set_options(timeout=180_000)  # waiting for runs on shared CPUs, not timing them

# Hand-written retrieval questions about the eval corpus's pages (tests/conftest.py).
QUESTIONS = [
    {"id": "h1", "question": "How do I open sockets?", "paths": ["sockets.md"]},
    {"id": "h2", "question": "What error do archives raise?", "paths": ["archives.md"]},
]


@pytest.fixture(scope="module")
def data_backend(tiny_registry, eval_pages, eval_corpus, tmp_path_factory):
    """The tiny models, the eval pages as a collection, and every run's data arguments."""
    folder = tmp_path_factory.mktemp("data-backend")
    index = folder / "evalpages"
    ingest(eval_pages, "evalpages", index)
    questions = folder / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    data = [f"--eval-arg=--corpus={eval_corpus}", f"--eval-arg=--questions={questions}"]
    extra = [*NO_CACHE, "--collection", f"evalpages={index}", *data]
    with BackendProcess(tiny_registry, extra_args=extra, log_path=folder / "server.log") as server:
        yield server


@pytest.fixture(scope="module")
def remote_ui(data_backend, ui_python, tmp_path_factory) -> Iterator[UiProcess]:
    log = tmp_path_factory.mktemp("logs") / "remote-ui.log"
    with UiProcess(data_backend.target, log_path=log, python=ui_python) as ui:
        yield ui


def test_every_suite_runs_on_the_backend_from_the_evals_tab(
    page, remote_ui, data_backend, tiny_evals_dir, artifacts_dir
):
    page.goto(remote_ui.url)
    page.get_by_role("tab", name="Evals").click()
    status = page.locator("#evals-status")
    expect(status).to_contain_text("2 models served")
    set_number(page, "evals-size", 2)
    for suite in SUITES:
        choose(page, "evals-suite", suite)
        page.locator("#evals-run").click()
        expect(status).to_contain_text(f"Finished {suite}. tiny: ")
        expect(status).to_contain_text(" 0 errors")
        expect(page.locator("#evals-metrics")).to_contain_text(suite)
        expect(page.locator("#evals-run-metrics")).to_contain_text(f"{suite} v")
        # the run the tab inspects is the one just made: its first row as GetEvalRows has it
        model, name = page.locator("#evals-inspect input").input_value().split("/", 1)
        with ChatClient(data_backend.target) as client:
            summaries = {s.name: s for s in client.get_model("tiny").eval_summaries}
            first = json.loads(client.all_eval_rows(name, model)[0])
        assert (model, summaries[name].suite) == ("tiny", suite)
        expect(page.locator("#evals-items")).to_contain_text(first["id"])
    page.screenshot(path=artifacts_dir / "ui-evals-every-suite.png", full_page=True)
    with ChatClient(data_backend.target) as client:
        stored = {s.suite for s in client.get_model("tiny").eval_summaries}
    assert stored >= set(SUITES)  # each run was recorded in the model's evals/
