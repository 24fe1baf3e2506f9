"""The chat UI in headless Chromium, as a real `python -m ui` process talking over gRPC to a
real backend process (`tiny_server`: tiny random models whose answers are gibberish but
stream). Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from chatforge.ports import PortReservation
from tests.browser import ask, open_chat, set_number
from tests.helpers import metric_value, wait_for
from ui.launcher import UiProcess

pytestmark = pytest.mark.slow

# Waiting for the page (not timing it): generous, since the CPUs are shared.
expect.set_options(timeout=30_000)


@pytest.fixture(scope="module")
def ui_without_backend(tmp_path_factory) -> Iterator[UiProcess]:
    """A UI whose backend address has nothing listening, started as in a container
    (all interfaces) and with --share, which cannot open its tunnel from here."""
    log = tmp_path_factory.mktemp("logs") / "ui-no-backend.log"
    with (
        PortReservation() as nothing_listens,  # held: no server can take the port meanwhile
        UiProcess(
            f"127.0.0.1:{nothing_listens.port}",
            host="0.0.0.0",
            extra_args=["--share", "--public"],
            log_path=log,
        ) as process,
    ):
        yield process


def answer_text(page: Page) -> str:
    return page.locator("#chat-log [data-testid=bot]").last.inner_text()


def usage(page: Page) -> tuple[int, int]:
    """(completion tokens, prompt tokens) from the usage line under the last answer."""
    match = re.search(r"(\d+) tokens · prompt (\d+)", answer_text(page))
    assert match, answer_text(page)
    return int(match[1]), int(match[2])


def test_answer_streams_into_the_chat(page, ui, artifacts_dir):
    open_chat(page, ui)
    expect(page.locator("#chat-model input")).to_have_value("tiny")  # the server's default
    set_number(page, "chat-temperature", 0)
    set_number(page, "chat-max-tokens", 600)
    # Record the answer's length at every change of the chat log.
    page.evaluate(
        """() => {
            window.answerLengths = [];
            new MutationObserver(() => {
                const bots = document.querySelectorAll('#chat-log [data-testid=bot]');
                if (bots.length) window.answerLengths.push(bots[bots.length - 1].innerText.length);
            }).observe(document.querySelector('#chat-log'),
                       {subtree: true, childList: true, characterData: true});
        }"""
    )
    ask(page, "What is the capital of France?")
    answers = page.locator("#chat-log [data-testid=bot]")
    expect(answers.last).to_contain_text("finish LENGTH")  # its usage line, under it
    expect(answers.last).to_contain_text("tokens/s")
    expect(page.locator("#chat-log [data-testid=user]")).to_have_text(
        "What is the capital of France?"
    )
    final = answer_text(page)
    lengths = [n for n in page.evaluate("window.answerLengths") if n > 0]
    assert final.strip()
    assert len(set(lengths)) >= 2, f"the answer did not grow in steps: {lengths}"
    page.screenshot(path=artifacts_dir / "ui-chat-streamed.png", full_page=True)

    # The second turn sends the conversation so far: its prompt holds the first answer.
    first_completion, first_prompt = usage(page)
    ask(page, "And of Italy?")
    expect(answers).to_have_count(2)
    expect(answers.last).to_contain_text("finish")
    assert usage(page)[1] > first_prompt + first_completion // 2
    expect(answers.first).to_contain_text(f"{first_completion} tokens · prompt {first_prompt}")


def test_stop_cancels_the_stream_on_the_server(page, ui, tiny_server, artifacts_dir):
    open_chat(page, ui)
    set_number(page, "chat-temperature", 0)
    set_number(page, "chat-max-tokens", 4000)
    steps = "chatforge_inter_token_latency_seconds_count"  # one per decoded token
    cancelled = metric_value(tiny_server, "chatforge_requests_total", code="CANCELLED")
    before = metric_value(tiny_server, steps)
    ask(page, "Tell me a very long story.")
    expect(page.locator("#chat-log [data-testid=bot]")).not_to_have_text("")
    assert metric_value(tiny_server, "chatforge_active_streams") == 1
    page.click("#chat-stop")

    expect(page.locator("#chat-log [data-testid=bot]").last).to_contain_text("Stopped after")
    assert wait_for(lambda: metric_value(tiny_server, "chatforge_active_streams") == 0, 30)
    assert wait_for(
        lambda: (
            metric_value(tiny_server, "chatforge_requests_total", code="CANCELLED") == cancelled + 1
        )
    )
    decoded = metric_value(tiny_server, steps) - before
    assert decoded < 3000, f"the server decoded {decoded} of 4000 tokens after Stop"
    shown = answer_text(page)
    time.sleep(1.0)
    assert answer_text(page) == shown, "the answer kept growing after Stop"
    page.screenshot(path=artifacts_dir / "ui-chat-stopped.png", full_page=True)


def test_closing_the_tab_cancels_the_stream(browser, ui, tiny_server):
    page = browser.new_page()
    open_chat(page, ui)
    set_number(page, "chat-temperature", 0)
    set_number(page, "chat-max-tokens", 4000)
    steps = "chatforge_inter_token_latency_seconds_count"
    before = metric_value(tiny_server, steps)
    ask(page, "Tell me a very long story.")
    expect(page.locator("#chat-log [data-testid=bot]")).not_to_have_text("")
    page.close()
    assert wait_for(lambda: metric_value(tiny_server, "chatforge_active_streams") == 0, 30)
    decoded = metric_value(tiny_server, steps) - before
    assert decoded < 3000, f"the server decoded {decoded} of 4000 tokens after the tab closed"


def test_backend_error_shows_status_and_message(page, ui):
    errors = {"name": "chatforge_ui_backend_errors_total", "code": "INVALID_ARGUMENT"}
    turns = {"name": "chatforge_ui_chat_turns_total", "outcome": "error"}
    before = metric_value(ui, **errors), metric_value(ui, **turns)
    open_chat(page, ui)
    too_long = "word " * 6_500  # beyond the API's 32,000 characters a message
    ask(page, too_long)
    status = page.locator("#chat-status")
    expect(status).to_contain_text("Backend error INVALID_ARGUMENT")
    expect(status).to_contain_text("messages[0].content")
    expect(page.locator("#chat-input textarea")).to_have_value(too_long.strip())  # to retry
    assert "Traceback" not in page.content()
    # The turn's request id is shown under the error, which the server's message names too.
    expect(status).to_contain_text(re.compile(r"\(request id [0-9a-f]{32}\)"))
    [named, shown] = re.findall(r"request(?: id)? ([0-9a-f]{32})", status.inner_text())
    assert named == shown
    # The UI counted the turn and the backend error on its own metrics port.
    assert (metric_value(ui, **errors), metric_value(ui, **turns)) == (before[0] + 1, before[1] + 1)


def test_max_tokens_at_its_maximum_is_fitted_not_refused(page, ui, artifacts_dir):
    """The slider reaches the context less one token; sent with a long prompt, the
    answer fills exactly what the context leaves instead of being refused."""
    open_chat(page, ui)
    slider = page.locator("#chat-max-tokens input[type=range]")
    expect(slider).to_have_attribute("max", "4095")  # the tiny model's context is 4096
    set_number(page, "chat-max-tokens", 4095)
    ask(page, "zqxj " * 760)  # byte-level tokens the tiny tokenizer never merged
    answer = page.locator("#chat-log [data-testid=bot]").last
    expect(answer).to_contain_text("finish LENGTH", timeout=240_000)  # a 4k-token prefill
    completion, prompt = usage(page)
    assert prompt > 3000 and completion + prompt == 4096
    expect(page.locator("#chat-status")).to_have_text("")
    page.screenshot(path=artifacts_dir / "ui-chat-max-tokens-fitted.png", full_page=True)


def test_backend_down_is_explained(page, ui_without_backend, artifacts_dir):
    open_chat(page, ui_without_backend, model_info="UNAVAILABLE")
    ask(page, "Is anyone there?")
    status = page.locator("#chat-status")
    expect(status).to_contain_text("Backend error UNAVAILABLE")
    expect(status).to_contain_text("is the backend running at")
    assert "Traceback" not in page.content()
    page.screenshot(path=artifacts_dir / "ui-backend-down.png", full_page=True)


def test_share_without_tunnel_keeps_serving_locally(ui_without_backend):
    assert wait_for(lambda: "still serving locally" in ui_without_backend.log(), 30)
    assert "--share: could not open a public link" in ui_without_backend.log()
    with urllib.request.urlopen(ui_without_backend.url, timeout=5) as response:
        assert response.status == 200
    assert ui_without_backend.process.poll() is None
