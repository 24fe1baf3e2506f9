"""Retrieval on the Chat tab: the toggle, the collection picker, and the sources of an answer.

Design decisions:
- A request control like the model picker: its values become the `rag=` argument of
  `ChatClient.chat`; with the toggle off no `rag` is sent and the server retrieves nothing.
- The picker lists what `ListCollections` returns, the server's default preselected. A
  backend without collections leaves the toggle disabled with a line saying how to add
  one, so no request can fail for it.
- A collection still being built (the server lists it with `building` and the reason) is
  shown with the server's message. Ticking the toggle asks the server again: while the
  picked collection is still being built the toggle unticks itself and the message says
  why; once the ingest has published it, the tick holds. So a page opened during
  `make demo`'s first build starts answering from documents without a reload.
- Sources are Markdown under the answer text in the assistant's message: the title links to
  the exact section when the collection knows where its pages live on the web, otherwise
  the path and anchor are shown; the snippet follows as a quote. They are drawn as soon as
  the `citations` event arrives, before the answer streams.
- The conversation sent back to the backend keeps only the answer text: sources are for
  the reader, and the next turn retrieves its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

from backend.client import ChatClient
from chat.v1 import chat_pb2
from ui.errors import BACKEND_ERRORS, describe_error

DEFAULT_K = 4
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def escape_markdown(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def format_sources(citations: Sequence[chat_pb2.Citation]) -> str:
    """The Markdown block shown under an answer."""
    lines = ["**Sources**", ""]
    for c in citations:
        where = f"{c.source_path}#{c.anchor}" if c.anchor else c.source_path
        name = escape_markdown(c.title)
        title = f"[{name}]({c.url})" if c.url else f"{name} · `{where}`"
        lines.append(f"{c.index}. {title}  ")
        lines.append(f"   > {escape_markdown(c.snippet)}")
    return "\n".join(lines)


def _sentence(text: str) -> str:
    return f"{text[:1].upper()}{text[1:]}." if text else ""


def describe_collections(collections: Sequence[chat_pb2.Collection]) -> str:
    """One line per collection: its size, or the server's word that it is being built."""
    lines = []
    for c in collections:
        if c.building:
            lines.append(f"**{c.name}: being built.** {_sentence(c.detail)}")
        else:
            lines.append(f"{c.name}: {c.documents} documents, {c.chunks} chunks")
    return "  \n".join(lines)


class RetrievalControls:
    """Whether to answer from documents, from which collection, with how many sources."""

    def __init__(self, client_factory: Callable[[], ChatClient]) -> None:
        self._client_factory = client_factory
        self.enabled = gr.Checkbox(
            value=False,
            interactive=False,
            label="Answer from documents (retrieval)",
            elem_id="chat-rag",
        )
        self.collection = gr.Dropdown(
            choices=[], value=None, label="Collection", elem_id="chat-collection"
        )
        self.k = gr.Slider(1, 20, value=DEFAULT_K, step=1, label="Sources", elem_id="chat-rag-k")
        self.info = gr.Markdown(elem_id="chat-rag-info")
        self.components = [self.enabled, self.collection, self.k]
        self.outputs = [self.enabled, self.collection, self.info]
        gr.on(
            [self.enabled.input, self.collection.input],
            self.check,
            [self.enabled, self.collection],
            [self.enabled, self.info],
            queue=False,
        )

    def load(self) -> tuple[Any, Any, str]:
        client = self._client_factory()
        try:
            collections = client.list_collections().collections
        except BACKEND_ERRORS as error:
            off = gr.Checkbox(value=False, interactive=False)
            return off, gr.Dropdown(choices=[], value=None), describe_error(error, client.target)
        if not collections:
            return (
                gr.Checkbox(value=False, interactive=False),
                gr.Dropdown(choices=[], value=None),
                "This backend has no document collection: build one with `python -m backend "
                "ingest` and start the backend with `--collection NAME=INDEX_DIR`.",
            )
        default = next((c.name for c in collections if c.is_default), collections[0].name)
        choices = [c.name for c in collections]
        return (
            gr.Checkbox(interactive=True),
            gr.Dropdown(choices=choices, value=default),
            describe_collections(collections),
        )

    def check(self, enabled: bool, name: str | None) -> tuple[Any, str]:
        """On ticking the toggle (or picking another collection with it ticked): is the
        collection ready? While it is being built the toggle unticks and says why."""
        if not enabled:
            return gr.skip(), gr.skip()
        client = self._client_factory()
        try:
            collections = client.list_collections().collections
        except BACKEND_ERRORS as error:
            return gr.Checkbox(value=False), describe_error(error, client.target)
        picked = next((c for c in collections if c.name == name), None)
        if picked is None:
            return gr.Checkbox(value=False), (
                f"The backend no longer serves collection {name!r}; press Refresh."
            )
        if picked.building:
            return gr.Checkbox(value=False), (
                f"**Answering from documents is not available yet.** {_sentence(picked.detail)}"
            )
        return gr.skip(), describe_collections(collections)

    def chat_kwargs(self, values: dict) -> dict[str, Any]:
        if not values[self.enabled]:
            return {}
        rag = chat_pb2.RagOptions(
            enabled=True, collection=values[self.collection] or "", k=int(values[self.k])
        )
        return {"rag": rag}
