"""Two people chatting with one UI at once, each in a browser context of their own
(headless Chromium, one real `python -m ui` on `tiny_server`): neither sees the other's
messages or settings, and Stop in one conversation stops that one alone, on the server
too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import ask, open_chat, set_number
from tests.helpers import metric_value, wait_for
from ui.launcher import UiProcess

pytestmark = pytest.mark.slow
expect.set_options(timeout=30_000)


@pytest.fixture
def two_pages(browser: Browser, ui: UiProcess) -> Iterator[tuple[Page, Page]]:
    contexts = [browser.new_context(viewport={"width": 1280, "height": 900}) for _ in "ab"]
    pages = [context.new_page() for context in contexts]
    for page in pages:
        open_chat(page, ui)
    yield pages[0], pages[1]
    for context in contexts:
        context.close()


def answer(page: Page):
    return page.locator("#chat-log [data-testid=bot]").last


def answer_length(page: Page) -> int:
    return len(answer(page).inner_text())


def test_two_conversations_stay_apart_and_stop_alone(two_pages, tiny_server, artifacts_dir):
    alice, bob = two_pages
    set_number(alice, "chat-max-tokens", 4000)
    set_number(bob, "chat-max-tokens", 12)
    ask(alice, "Alice asks for a very long story.")
    expect(answer(alice)).not_to_have_text("")

    # Bob's short turn, with his own settings, finishes while Alice's still streams.
    ask(bob, "Bob says hello.")
    expect(answer(bob)).to_contain_text("finish LENGTH")
    expect(answer(bob)).to_contain_text("12 tokens")
    assert metric_value(tiny_server, "chatforge_active_streams") == 1  # Alice's
    expect(alice.locator("#chat-max-tokens input[type=number]")).to_have_value("4000")
    expect(bob.locator("#chat-max-tokens input[type=number]")).to_have_value("12")

    # Bob starts a long answer too; Alice's Stop ends hers alone.
    set_number(bob, "chat-max-tokens", 4000)
    ask(bob, "Bob wants a long story now.")
    expect(bob.locator("#chat-log [data-testid=bot]")).to_have_count(2)
    expect(answer(bob)).not_to_have_text("")
    assert wait_for(lambda: metric_value(tiny_server, "chatforge_active_streams") == 2, 30)
    alice.click("#chat-stop")
    expect(answer(alice)).to_contain_text("Stopped after")
    assert wait_for(lambda: metric_value(tiny_server, "chatforge_active_streams") == 1, 30)
    before = answer_length(bob)
    assert wait_for(lambda: answer_length(bob) > before, 30), "Bob's answer stopped with Alice's"
    expect(answer(bob)).not_to_contain_text("Stopped after")
    alice.screenshot(path=artifacts_dir / "ui-two-users-alice.png", full_page=True)
    bob.screenshot(path=artifacts_dir / "ui-two-users-bob.png", full_page=True)

    # Each log holds its own questions only.
    for page, mine, theirs in ((alice, "Alice", "Bob"), (bob, "Bob", "Alice")):
        questions = page.locator("#chat-log [data-testid=user]").all_inner_texts()
        assert questions and all(mine in q and theirs not in q for q in questions), questions
    bob.click("#chat-stop")
    expect(answer(bob)).to_contain_text("Stopped after")
    assert wait_for(lambda: metric_value(tiny_server, "chatforge_active_streams") == 0, 30)
