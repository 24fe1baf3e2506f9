"""The UI behind its login, as deployed: run from a venv holding only the UI's dependency set
(tests/ui_env.py, the `ui_python` fixture), started with a users file and its own API key
(from the environment), against a real backend that requires API keys (`locked_server`).
Driven in headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser import ask, set_number
from ui.launcher import UiProcess
from ui.users import User, Users, hash_password

pytestmark = pytest.mark.slow
expect.set_options(timeout=30_000)

PASSWORDS = {"alice": "alice-password", "bob": "bob-password"}


@pytest.fixture(scope="module")
def login_ui(locked_server, keys, ui_python, tmp_path_factory) -> Iterator[tuple[UiProcess, str]]:
    """(the UI, its API key); alice is an admin of the UI, bob a user. The UI stores eval
    results (RecordEval), so its own key is an admin one."""
    folder = tmp_path_factory.mktemp("login")
    users = folder / "users.yaml"
    Users({name: User(hash_password(password), "admin" if name == "alice" else "user")
           for name, password in PASSWORDS.items()}).save(users)  # fmt: skip
    ui = UiProcess(
        locked_server.target,
        extra_args=["--auth-file", str(users)],
        env={"CHATFORGE_API_KEY": keys["admin"]},
        log_path=folder / "ui.log",
        python=ui_python,
    )
    with ui:
        yield ui, keys["admin"]


def sign_in(page: Page, ui: UiProcess, name: str, password: str) -> None:
    page.goto(ui.url)
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()


def test_login_refuses_a_wrong_password_then_chats(page, login_ui, artifacts_dir):
    ui, ui_key = login_ui
    sign_in(page, ui, "bob", "not-his-password")
    expect(page.get_by_text("Incorrect Credentials")).to_be_visible()
    expect(page.locator("#chat-input")).to_have_count(0)
    page.screenshot(path=artifacts_dir / "ui-login-refused.png")

    sign_in(page, ui, "bob", PASSWORDS["bob"])
    # The model list comes from the backend: the UI's API key was accepted.
    expect(page.locator("#chat-model input")).to_have_value("tiny")
    set_number(page, "chat-max-tokens", 16)
    ask(page, "What is the capital of France?")
    answer = page.locator("#chat-log [data-testid=bot]").last
    expect(answer).to_contain_text("finish")  # the usage line under the answer
    assert ui_key not in page.content()  # the key stays on the server side
    page.screenshot(path=artifacts_dir / "ui-login-chat.png", full_page=True)


def test_only_admins_may_run_eval_suites(browser, login_ui):
    ui, _ = login_ui
    for name, may_run in (("bob", False), ("alice", True)):
        context = browser.new_context()  # a session of its own
        page = context.new_page()
        sign_in(page, ui, name, PASSWORDS[name])
        page.get_by_role("tab", name="Evals").click()
        expect(page.locator("#evals-status")).to_contain_text("models served")
        if may_run:
            expect(page.locator("#evals-run")).to_be_visible()
        else:
            expect(page.locator("#evals-run")).to_be_hidden()
            expect(page.locator("#evals-status")).to_contain_text("needs an admin user")
        context.close()
