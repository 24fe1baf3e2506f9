"""Models without restarts, end to end: a real server watching its models.yaml, and the UI
in headless Chromium. A model registered while the server runs appears after Refresh and
answers, health stays SERVING throughout, and ReloadModels retires a removed one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from backend.client import ChatClient
from backend.launcher import BackendProcess
from tests.browser import ask, choose, open_chat
from tests.helpers import wait_for
from tests.tiny_model import make_tiny_model
from ui.launcher import UiProcess

pytestmark = pytest.mark.slow
expect.set_options(timeout=30_000)  # waiting for the page, not timing it: shared CPUs


@pytest.fixture(scope="module")
def watched(tmp_path_factory, tiny_model_dir) -> Iterator[tuple]:
    """A server on a models.yaml of its own that it re-reads every second, and its UI."""
    folder = tmp_path_factory.mktemp("watched")
    registry = folder / "models.yaml"
    registry.write_text(f"models:\n  tiny:\n    checkpoint: {tiny_model_dir}\n    default: true\n")
    extra = ["--watch-models", "1", "--cache-entries", "0"]
    with BackendProcess(registry, extra_args=extra, log_path=folder / "server.log") as server:
        ui = UiProcess(server.target, log_path=folder / "ui.log").start(timeout=300)
        try:  # a UI of its own: the shared one talks to the shared server
            yield registry, server, ui
        finally:
            ui.stop()


def test_a_registered_model_appears_after_refresh(page, watched, tmp_path, artifacts_dir):
    registry, server, ui = watched
    open_chat(page, ui)
    fresh = make_tiny_model(tmp_path / "fresh", seed=2)
    with ChatClient(server.target) as client:
        registry.write_text(registry.read_text() + f"  fresh:\n    checkpoint: {fresh}\n")
        serving = []
        listed = wait_for(
            lambda: (
                serving.append(client.is_serving())
                or "fresh" in [m.name for m in client.list_models().models]
            ),
            60,
        )
        assert listed and all(serving), "health left SERVING while the model loaded"

        page.locator("#chat-model-refresh").click()
        choose(page, "chat-model", "fresh")  # its defaults: 256 tokens, fast on a tiny model
        ask(page, "Hello, new model")
        answer = page.locator("#chat-log [data-testid=bot]").last
        expect(answer).to_contain_text("256 tokens · prompt")
        expect(answer).to_contain_text("finish LENGTH · fresh")
        page.screenshot(path=artifacts_dir / "ui-chat-model-reloaded.png", full_page=True)

        registry.write_text(registry.read_text().split("  fresh:")[0])
        reply = client.reload_models()
        assert "tiny" in reply.unchanged and not reply.errors
        assert wait_for(lambda: [m.name for m in client.list_models().models] == ["tiny"], 30)
        assert client.is_serving()
