"""Driving the Chat tab in headless Chromium: helpers shared by the UI tests."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from ui.launcher import UiProcess


def open_chat(page: Page, ui: UiProcess, model_info: str = "context") -> None:
    page.goto(ui.url)
    expect(page.locator("#chat-model-info")).to_contain_text(model_info)


def set_number(page: Page, elem_id: str, value: float) -> None:
    field = page.locator(f"#{elem_id} input[type=number]")
    field.fill(str(value))
    field.press("Tab")


def ask(page: Page, question: str) -> None:
    page.fill("#chat-input textarea", question)
    page.press("#chat-input textarea", "Enter")


def choose(page: Page, elem_id: str, value: str) -> None:
    """Pick a dropdown value: type it to filter the options, take the match."""
    field = page.locator(f"#{elem_id} input")
    field.click()
    field.fill(value)
    page.locator(f'#{elem_id} [role=option][aria-label="{value}"], '
                 f'[role=option][aria-label="{value}"]:visible').first.click()  # fmt: skip
