"""The Gradio app: one Blocks with a tab per job (Chat, Evals, Training).

Design decisions:
- The UI reaches the backend only through `backend.client.ChatClient` over gRPC (the proto
  is the boundary), so it runs on a small CPU host while the model runs elsewhere; nothing
  here imports torch or the server.
- One client (one gRPC channel, which multiplexes every call) is shared by all tabs and
  sessions. Tabs get it through a factory so that building the layout never connects:
  the app starts, and says what is wrong, even while the backend is down. The client's
  API key and TLS files come from `ClientSettings` (the environment), never the page.
- Each tab is a module with a `build_..._tab(app, client_factory)` function, listed in
  `TABS`; adding a tab is one module and one line here.
"""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from backend.client import ChatClient
from backend.settings import ClientSettings
from ui.chat_tab import build_chat_tab
from ui.evals_tab import build_evals_tab
from ui.training_tab import build_training_tab
from ui.users import Users

TabBuilder = Callable[..., object]  # (app, client_factory, **extras of its tab)
TABS: list[tuple[str, TabBuilder]] = [
    ("Chat", build_chat_tab),
    ("Evals", build_evals_tab),
    ("Training", build_training_tab),
]


def build_app(
    backend: str, users: Users | None = None, client_settings: ClientSettings | None = None
) -> gr.Blocks:
    """The whole UI, talking to the gRPC backend at `backend` (host:port); `users` (the
    login's users file) decides who may use the actions that write, see ui/users.py."""
    client = ChatClient(backend, settings=client_settings)
    # Tabs that act by role get the users as well.
    extras = {"Evals": {"users": users}}
    with gr.Blocks(title="chatforge") as app:
        gr.Markdown(f"## chatforge\nBackend: `{backend}` (gRPC)")
        with gr.Tabs():
            for name, build_tab in TABS:
                with gr.Tab(name, id=name.lower()):
                    build_tab(app, lambda: client, **extras.get(name, {}))
    return app
