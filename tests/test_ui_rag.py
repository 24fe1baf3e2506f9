"""Retrieval on the Chat tab: the toggle and collection picker, and the sources drawn under
the answer (title linked to the section, snippet), in headless Chromium against a real
backend process serving the tiny models and the fixture collection."""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr
import pytest
from playwright.sync_api import expect

from backend.client import ChatClient
from tests.browser import ask, open_chat, set_number
from ui.launcher import UiProcess
from ui.retrieval_controls import RetrievalControls


@pytest.fixture(scope="module")
def rag_ui(rag_server, tmp_path_factory) -> Iterator[UiProcess]:
    log = tmp_path_factory.mktemp("logs") / "ui-rag.log"
    with UiProcess(rag_server.target, log_path=log) as process:
        yield process


def test_toggle_is_off_and_explained_without_collections(tiny_server):
    client = ChatClient(tiny_server.target)
    with gr.Blocks():
        controls = RetrievalControls(lambda: client)
    toggle, picker, info = controls.load()
    assert toggle.interactive is False and picker.choices == []
    assert "no document collection" in info and "--collection NAME=INDEX_DIR" in info
    assert controls.chat_kwargs({controls.enabled: False}) == {}


@pytest.mark.slow
def test_sources_appear_under_the_answer(page, rag_ui, artifacts_dir):
    open_chat(page, rag_ui)
    expect(page.locator("#chat-collection input")).to_have_value("docs")
    expect(page.locator("#chat-rag-info")).to_contain_text("docs: 4 documents")
    page.locator("#chat-rag input").check()
    set_number(page, "chat-temperature", 0)
    set_number(page, "chat-max-tokens", 20)
    ask(page, "What does widgets.frobnicate return?")
    expect(page.locator("#chat-log [data-testid=bot]").last).to_contain_text("finish")
    answer = page.locator("#chat-log [data-testid=bot]").last
    expect(answer).to_contain_text("Sources")
    link = answer.locator("a", has_text="Widgets — Frobnicate")
    expect(link).to_have_attribute("href", "https://docs.example.org/widgets.rst#frobnicate")
    expect(answer).to_contain_text("returns the number of sprockets in the crate")
    page.screenshot(path=artifacts_dir / "ui-chat-sources.png", full_page=True)

    # Off again: the next answer has no sources, the first one keeps its own.
    page.locator("#chat-rag input").uncheck()
    ask(page, "And without documents?")
    expect(page.locator("#chat-log [data-testid=bot]")).to_have_count(2)
    expect(page.locator("#chat-log [data-testid=bot]").last).to_contain_text("finish")
    expect(page.locator("#chat-log [data-testid=bot]").last).not_to_contain_text("Sources")
    expect(page.locator("#chat-log [data-testid=bot]").first).to_contain_text("Sources")
