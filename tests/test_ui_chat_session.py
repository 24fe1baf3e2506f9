"""The Chat tab as a person meets it, in headless Chromium against the tiny models: the
page's title, sampling that starts from each model's own defaults, a usage line under
every answer, and a conversation that survives a reload, clears and downloads as JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser import ask, choose, open_chat, set_number

pytestmark = pytest.mark.slow
expect.set_options(timeout=30_000)  # waiting for the page, not timing it: shared CPUs


def slider(page, elem_id: str):
    return page.locator(f"#{elem_id} input[type=number]")


def test_sampling_starts_from_the_chosen_models_defaults(page, ui, artifacts_dir):
    open_chat(page, ui)
    assert page.title() == "chatforge"
    expect(slider(page, "chat-temperature")).to_have_value("0.7")  # tiny: the server's own
    expect(slider(page, "chat-repetition-penalty")).to_have_value("1")
    choose(page, "chat-model", "tiny-b")  # models.yaml gives it `sampling:` of its own
    expect(page.locator("#chat-model-info")).to_contain_text("tiny-b's own defaults")
    expect(slider(page, "chat-temperature")).to_have_value("0.3")
    expect(slider(page, "chat-top-p")).to_have_value("0.9")
    expect(slider(page, "chat-repetition-penalty")).to_have_value("1.2")
    page.screenshot(path=artifacts_dir / "ui-chat-model-defaults.png", full_page=True)


def test_conversation_survives_a_reload_clears_and_downloads(page, ui, artifacts_dir):
    open_chat(page, ui)
    page.locator("#chat-clear").click()  # the browser may hold an earlier test's talk
    set_number(page, "chat-max-tokens", 6)
    answers = page.locator("#chat-log [data-testid=bot]")
    ask(page, "What is the capital of France?")
    expect(answers.last).to_contain_text("6 tokens · prompt")
    ask(page, "And of Italy?")
    expect(answers).to_have_count(2)
    expect(answers.last).to_contain_text("6 tokens · prompt")
    shown = [a.inner_text() for a in answers.all()]

    page.reload()
    expect(answers).to_have_count(2)
    assert [a.inner_text() for a in answers.all()] == shown  # usage lines included
    page.screenshot(path=artifacts_dir / "ui-chat-after-reload.png", full_page=True)
    set_number(page, "chat-max-tokens", 6)  # the sliders start again from the defaults
    ask(page, "And of Spain?")  # the restored history is what the next turn sends
    expect(answers).to_have_count(3)
    expect(answers.last).to_contain_text("6 tokens · prompt")
    prompts = [int(re.search(r"prompt (\d+)", a.inner_text())[1]) for a in answers.all()]
    assert prompts[2] > prompts[1] > prompts[0]

    with page.expect_download() as download:
        page.locator("#chat-download").click()
    saved = json.loads(Path(download.value.path()).read_text())
    assert download.value.suggested_filename.startswith("chatforge-conversation-")
    assert [m["role"] for m in saved["messages"]] == ["user", "assistant"] * 3
    assert saved["messages"][4]["content"] == "And of Spain?"
    assert "finish LENGTH" in saved["shown"][-1]["content"]  # what the chat showed

    page.locator("#chat-clear").click()
    expect(answers).to_have_count(0)
    page.reload()
    expect(page.locator("#chat-model-info")).to_contain_text("context")
    expect(answers).to_have_count(0)
