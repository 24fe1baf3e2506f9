"""The README's first example in the browser, as a new user meets it: the real default
model, the Chat tab's controls untouched (they start from the model's measured defaults in
models.yaml), answers "What is the capital of France?" correctly, without repeating."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from evals.scoring import repeated_trigrams
from tests.browser import ask, open_chat
from ui.launcher import UiProcess

pytestmark = pytest.mark.slow
expect.set_options(timeout=240_000)  # the real model on shared CPUs: waiting, not timing


@pytest.fixture(scope="module")
def default_ui(default_server, tmp_path_factory) -> Iterator[UiProcess]:
    log = tmp_path_factory.mktemp("logs") / "ui-default.log"
    with UiProcess(default_server.target, log_path=log) as process:
        yield process


def test_the_first_answer_with_the_defaults_is_right(page, default_ui, artifacts_dir):
    open_chat(page, default_ui)
    expect(page.locator("#chat-model-info")).to_contain_text("Sampling defaults:")
    ask(page, "What is the capital of France?")
    answer = page.locator("#chat-log [data-testid=bot]").last
    expect(answer).to_contain_text("finish STOP")
    text = answer.inner_text()
    assert "Paris" in text
    assert repeated_trigrams([text.split("finish")[0]]) < 0.1
    page.screenshot(path=artifacts_dir / "ui-chat-first-answer.png", full_page=True)
