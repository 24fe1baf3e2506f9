"""The Chat tab's conversation, kept in the browser, cleared or downloaded as JSON.

Design decisions:
- Two values make a conversation: `history`, the plain `{role, content}` turns sent to
  the backend, and `display`, what the chatbot shows (answers with their sources, notices
  and usage lines). Both live in `gr.BrowserState` (the browser's localStorage, encrypted
  by Gradio), so a page reload brings the conversation back and the UI process keeps no
  per-user state: any replica behind a load balancer can serve the next turn.
- Gradio encrypts the stored values with a secret it draws at start-up, so by default a
  conversation outlives a page reload but not a restart of the UI. `$CHATFORGE_UI_SECRET`
  fixes the secret, for replicas on Cloud Run that must read each other's storage.
- A download button sends the file it already holds, so the file is written whenever
  the conversation changes (and when the page loads one back): both values, with the time
  and the backend, as JSON named by the time, in a folder of its own under the temporary
  folder (where Gradio serves files from). An empty conversation offers no file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

HISTORY_KEY = "chatforge-history"
DISPLAY_KEY = "chatforge-display"


class Conversation:
    def __init__(self, backend: str) -> None:
        secret = os.environ.get("CHATFORGE_UI_SECRET") or None
        self.backend = backend
        self.history = gr.BrowserState([], storage_key=HISTORY_KEY, secret=secret)
        self.display = gr.BrowserState([], storage_key=DISPLAY_KEY, secret=secret)

    def export(self, history: list[dict[str, Any]], display: list[dict[str, Any]]) -> str | None:
        """The conversation as a JSON file; its path, for a `gr.DownloadButton`."""
        if not display:
            return None
        now = dt.datetime.now(dt.UTC)
        folder = Path(tempfile.mkdtemp(prefix="chatforge-conversation-"))
        path = folder / f"chatforge-conversation-{now:%Y%m%d-%H%M%S}.json"
        document = {
            "exported_at": now.isoformat(timespec="seconds"),
            "backend": self.backend,
            "messages": history,  # what the backend was sent, turn by turn
            "shown": display,  # what the chat showed: notices, sources, usage lines
        }
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        return str(path)
