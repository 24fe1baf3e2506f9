"""The Chat tab: stream a reply from the backend into a chatbot, with the controls that
shape the request.

Design decisions:
- The conversation sent to the backend is a list of plain `{role, content}` strings. The
  Chatbot only displays it (Gradio 6 hands chatbot values back as lists of content
  blocks), and a failed or empty turn can be shown without entering the history.
- Request controls are small classes that own their components and turn the values into
  keyword arguments of `ChatClient.chat` (`model=`, `sampling=`). The reply handler takes
  its inputs as a set, so it receives `{component: value}`; a new control (the retrieval
  toggle that becomes `rag=`) is one more entry in `ChatTab.controls`, not a new signature.
- Replies are read into a `Reply` that applies events by kind. Citations are kept with
  the reply and drawn under its text (ui/retrieval_controls.py); guardrail events are kept
  too and drawn as a notice around it (ui/guardrail_notice.py: a blocked request, redacted
  personal data, dropped sources). The chatbot's messages (`display`) therefore differ
  from the text-only `history` sent to the backend. A question the guardrails blocked
  stays on screen with its notice but is left out of that history: the server screens
  every user turn, so sending it again would block every later turn of the conversation.
- Stop cancels the gRPC call itself (`ChatStream.cancel`), which the server sees as a
  cancelled RPC and stops decoding within one step. The stream of each browser session is
  kept in `ActiveStreams`, so Stop reaches the right call; the stop event bypasses the
  queue so it is never stuck behind the reply it has to stop. Closing the tab needs nothing
  extra: Gradio drops the reply generator, and closing a `ChatStream` cancels its call.
- Sampling controls start from the chosen model's defaults (its card's `default_sampling`,
  from models.yaml `sampling:`, with the reason shown under the model), so the first
  answer is the one the server's measured defaults give. Max tokens is sent as a ceiling
  (`fit_max_tokens`): the server lowers it to what the context leaves beside the prompt,
  so no position of the slider can produce a refused request as the conversation grows.
- Every answer carries its own usage line under it (tokens, prompt, time to first token,
  tokens/s, finish reason, model), kept with it in the conversation; a turn the
  guardrails blocked says so instead of zeros. The status line under the chat is only for
  what is happening now (generating) and for errors.
- The conversation is kept in the browser (`gr.BrowserState`, ui/conversation.py), so a
  page reload brings it back; Clear empties it and Download saves it as JSON.
- The chatbot is refreshed at most every 50 ms (a small model on a GPU streams hundreds of
  tokens a second; the browser needs a fraction of that), and always at the end.
- The reply handler has no concurrency limit of its own: the backend does admission
  control and says RESOURCE_EXHAUSTED, which the user sees like any other backend error.
- Each turn has a request id (ui/observe.py), sent to the backend and shown in the
  status line under the answer, so a person can quote it; the turn is counted in the UI's
  metrics and traced as a GenAI client span whose context the backend continues.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import gradio as gr

from backend.client import ChatClient, ChatStream
from chat.v1 import chat_pb2
from ui.conversation import Conversation
from ui.errors import BACKEND_ERRORS, describe_error
from ui.guardrail_notice import blocked_at_input, notices
from ui.observe import METRICS, finish_span, new_request_id, start_call, turn_span
from ui.retrieval_controls import RetrievalControls, escape_markdown, format_sources

ClientFactory = Callable[[], ChatClient]
Values = dict[Any, Any]  # {component: value}, as Gradio passes a set of inputs

REFRESH_SECONDS = 0.05


class RequestControl(Protocol):
    """Components whose values become keyword arguments of `ChatClient.chat`."""

    components: list[gr.components.Component]

    def chat_kwargs(self, values: Values) -> dict[str, Any]: ...


class SamplingControls:
    """Sliders for the sampling parameters, set from the model's defaults; the server
    validates them again."""

    def __init__(self) -> None:
        self.temperature = gr.Slider(
            0.0,
            2.0,
            value=0.0,
            step=0.05,
            label="Temperature (0 = greedy)",
            elem_id="chat-temperature",
        )
        self.top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p", elem_id="chat-top-p")
        self.top_k = gr.Slider(
            0, 200, value=0, step=1, label="Top-k (0 = off)", elem_id="chat-top-k"
        )
        self.max_tokens = gr.Slider(
            1,
            4096,
            value=256,
            step=1,
            label="Max tokens (at most: lowered to what the context leaves)",
            elem_id="chat-max-tokens",
        )
        self.repetition_penalty = gr.Slider(
            0.1,
            2.0,
            value=1.0,
            step=0.05,
            label="Repetition penalty (1 = off)",
            elem_id="chat-repetition-penalty",
        )
        self.seed = gr.Number(
            value=-1, minimum=-1, precision=0, label="Seed (-1 = random)", elem_id="chat-seed"
        )
        self.components = [
            self.temperature,
            self.top_p,
            self.top_k,
            self.max_tokens,
            self.repetition_penalty,
            self.seed,
        ]
        # the sliders a model's card sets, in the order `for_model` returns their updates
        self.model_set = [
            self.temperature,
            self.top_p,
            self.top_k,
            self.max_tokens,
            self.repetition_penalty,
        ]

    def for_model(self, card: chat_pb2.ModelCard) -> list[Any]:
        """Updates putting the sliders at the model's defaults, max tokens bounded by its
        context (the prompt needs at least one token)."""
        d = card.default_sampling
        top = max(1, card.context_length - 1)
        # proto floats are 32-bit: 0.7 arrives as 0.69999998...; the sliders step by 0.05
        return [
            gr.Slider(value=round(d.temperature, 4)),
            gr.Slider(value=round(d.top_p, 4)),
            gr.Slider(value=d.top_k),
            gr.Slider(maximum=top, value=min(d.max_tokens, top)),
            gr.Slider(value=round(d.repetition_penalty, 4)),
        ]

    def chat_kwargs(self, values: Values) -> dict[str, Any]:
        seed = values[self.seed]
        return {
            "sampling": chat_pb2.SamplingParams(
                temperature=values[self.temperature],
                top_p=values[self.top_p],
                top_k=int(values[self.top_k]),
                max_tokens=int(values[self.max_tokens]),
                repetition_penalty=values[self.repetition_penalty],
                seed=None if seed is None or seed < 0 else int(seed),
                fit_max_tokens=True,
            )
        }


class ModelPicker:
    """The models the backend serves (from ListModels), the default selected."""

    def __init__(self, client_factory: ClientFactory) -> None:
        self._client_factory = client_factory
        self._cards: dict[str, chat_pb2.ModelCard] = {}
        with gr.Row():
            self.dropdown = gr.Dropdown(
                choices=[], value=None, label="Model", elem_id="chat-model", scale=4
            )
            self.refresh = gr.Button("Refresh", elem_id="chat-model-refresh", scale=1)
        self.info = gr.Markdown(elem_id="chat-model-info")
        self.components = [self.dropdown]
        self.outputs: list[gr.components.Component] = []  # of `load`, set by `wire`

    def wire(self, sampling: SamplingControls) -> None:
        """Fill the list on Refresh; choosing a model sets the sampling to its defaults."""
        self._sampling = sampling
        described = [self.info, *sampling.model_set]
        self.outputs = [self.dropdown, *described]
        self.refresh.click(self.load, None, self.outputs, queue=False)
        self.dropdown.change(self.describe, self.dropdown, described, queue=False)

    def chat_kwargs(self, values: Values) -> dict[str, Any]:
        return {"model": values[self.dropdown] or ""}  # empty: the server's default

    def load(self) -> list[Any]:
        client = self._client_factory()
        unchanged = [gr.skip()] * len(self._sampling.model_set)
        try:
            response = client.list_models()
        except BACKEND_ERRORS as error:
            self._cards = {}
            empty = gr.Dropdown(choices=[], value=None)
            return [empty, describe_error(error, client.target), *unchanged]
        self._cards = {card.name: card for card in response.models}
        default = response.default_model or next(iter(self._cards), None)
        return [gr.Dropdown(choices=list(self._cards), value=default), *self.describe(default)]

    def describe(self, name: str | None) -> list[Any]:
        card = self._cards.get(name or "")
        if card is None:  # nothing to describe; keep what `load` said (maybe an error)
            return [gr.skip()] * (1 + len(self._sampling.model_set))
        info = (
            f"{card.architecture}, {card.parameters / 1e6:.1f}M parameters, {card.dtype}"
            f"{'' if card.quantization in ('', 'none') else ', ' + card.quantization}"
            f" on {card.device}, context {card.context_length} tokens"
        )
        if card.default_sampling_note:
            info += f"  \nSampling defaults: {escape_markdown(card.default_sampling_note)}"
        return [info, *self._sampling.for_model(card)]


@dataclass
class Reply:
    """What one answer has accumulated from its event stream."""

    text: str = ""
    model: str = ""
    request_id: str = ""
    prompt_tokens: int = 0
    tokens: int = 0
    finished: chat_pb2.Finished | None = None
    citations: list[chat_pb2.Citation] = field(default_factory=list)
    guardrails: list[chat_pb2.GuardrailEvent] = field(default_factory=list)

    def apply(self, event: chat_pb2.ChatEvent) -> None:
        kind = event.WhichOneof("event")
        if kind == "started":  # a retried call starts again (retries precede any text)
            self.model, self.text, self.tokens = event.started.model, "", 0
            self.request_id = event.started.request_id
            self.prompt_tokens = event.started.prompt_tokens
            self.citations, self.guardrails = [], []
        elif kind == "citations":
            self.citations = list(event.citations.citations)
        elif kind == "guardrail":
            self.guardrails.append(event.guardrail)
        elif kind == "delta":
            self.text += event.delta.text
            self.tokens += event.delta.token_count
        elif kind == "finished":
            self.finished = event.finished

    @property
    def shown(self) -> str:
        """The answer as displayed: the guardrails' notice about the question and the
        sources, the text, the notice about the answer, then the sources."""
        before, after = notices(self.guardrails, self.finished)
        sources = format_sources(self.citations) if self.citations else ""
        return "\n\n".join(part for part in (before, self.text, after, sources) if part)

    def usage_parts(self) -> list[str]:
        """The usage line's fields, joined with " · " (more may be appended)."""
        if self.finished is None:
            return [f"Stopped after {self.tokens} tokens", self.model, self._request]
        if blocked_at_input(self.guardrails):
            categories = sorted({g.category for g in self.guardrails if g.stage == "input"})
            return [
                f"Blocked by the guardrails ({', '.join(categories)})",
                "the model was not asked",
                f"prompt {self.prompt_tokens}",
                self.model,
                self._request,
            ]
        usage = self.finished.usage
        reason = chat_pb2.FinishReason.Name(self.finished.finish_reason)
        return [
            f"{usage.completion_tokens} tokens",
            f"prompt {usage.prompt_tokens}",
            f"first token {usage.time_to_first_token_ms:.0f} ms",
            f"{usage.tokens_per_second:.1f} tokens/s",
            f"finish {reason}" + (" (cached)" if usage.cached else ""),
            self.model,
            self._request,
        ]

    @property
    def _request(self) -> str:
        return f"request {self.request_id}" if self.request_id else ""

    def usage_line(self) -> str:
        return " · ".join(part for part in self.usage_parts() if part)

    @property
    def with_usage(self) -> str:
        """The answer as it stays in the conversation: shown text, then its usage line."""
        return f"{self.shown}\n\n<sub>{escape_markdown(self.usage_line())}</sub>"

    def outcome(self, error: object | None) -> str:
        """The turn's outcome as the UI's metrics count it."""
        if error is not None:
            return "error"
        if self.finished is None:
            return "stopped"
        if self.finished.finish_reason == chat_pb2.BLOCKED:
            return "blocked"
        return "answered" if self.text else "empty"


class ActiveStreams:
    """The stream each browser session is reading, so it can be cancelled from elsewhere."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[str, ChatStream] = {}

    def add(self, session: str, stream: ChatStream) -> None:
        with self._lock:
            self._streams[session] = stream

    def discard(self, session: str, stream: ChatStream) -> None:
        with self._lock:
            if self._streams.get(session) is stream:
                del self._streams[session]

    def cancel(self, session: str) -> None:
        with self._lock:
            stream = self._streams.pop(session, None)
        if stream is not None:
            stream.cancel()


class ChatTab:
    def __init__(self, app: gr.Blocks, client_factory: ClientFactory) -> None:
        self.client_factory = client_factory
        self.streams = ActiveStreams()
        self.conversation = Conversation(client_factory().target)
        self.history = self.conversation.history  # text only: what the backend is sent
        self.display = self.conversation.display  # what the chatbot shows
        with gr.Row():
            with gr.Column(scale=3):
                self.chatbot = gr.Chatbot(label="Conversation", height=460, elem_id="chat-log")
                self.status = gr.Markdown(elem_id="chat-status")
                with gr.Row():
                    self.message = gr.Textbox(
                        placeholder="Ask something and press Enter",
                        show_label=False,
                        scale=4,
                        elem_id="chat-input",
                    )
                    button = {"scale": 1, "min_width": 80}
                    self.send = gr.Button("Send", variant="primary", elem_id="chat-send", **button)
                    self.stop = gr.Button("Stop", variant="stop", elem_id="chat-stop", **button)
                with gr.Row():
                    self.clear = gr.Button("Clear conversation", elem_id="chat-clear", size="sm")
                    self.download = gr.DownloadButton(
                        "Download as JSON", elem_id="chat-download", size="sm"
                    )
            with gr.Column(scale=2):
                self.models = ModelPicker(client_factory)
                with gr.Accordion("Retrieval", open=True):
                    self.retrieval = RetrievalControls(client_factory)
                with gr.Accordion("Sampling", open=True):
                    self.sampling = SamplingControls()
        self.models.wire(self.sampling)
        self.controls: list[RequestControl] = [self.models, self.retrieval, self.sampling]

        inputs = {self.message, self.history, self.display}
        for control in self.controls:
            inputs.update(control.components)
        gr.on(
            [self.message.submit, self.send.click],
            self.respond,
            inputs=inputs,
            outputs=[self.message, self.chatbot, self.history, self.display, self.status],
            concurrency_limit=None,
            show_progress="minimal",
        )
        self.stop.click(self.cancel, None, None, queue=False)
        self.clear.click(
            lambda: ([], [], [], ""), None, [self.chatbot, self.history, self.display, self.status]
        )
        # The button offers a file of the conversation as it stands: renewed at each change.
        saved = [self.history, self.display]
        self.display.change(self.conversation.export, saved, self.download, queue=False)
        app.load(lambda shown: shown, self.display, self.chatbot)  # back after a reload
        app.load(self.conversation.export, saved, self.download)
        app.load(self.models.load, None, self.models.outputs)
        app.load(METRICS.page_loads.inc, None, None, queue=False)  # every page has this tab
        app.load(self.retrieval.load, None, self.retrieval.outputs)
        self.models.refresh.click(self.retrieval.load, None, self.retrieval.outputs, queue=False)

    def cancel(self, request: gr.Request) -> None:
        self.streams.cancel(request.session_hash)

    def respond(self, values: Values, request: gr.Request) -> Iterator[dict]:
        question = values[self.message].strip()
        if not question:
            yield {self.status: "Type a message first."}
            return
        history: list[dict[str, str]] = values[self.history]
        messages = [*history, {"role": "user", "content": question}]
        kwargs: dict[str, Any] = {}
        for control in self.controls:
            kwargs.update(control.chat_kwargs(values))
        client = self.client_factory()
        reply = Reply(request_id=new_request_id())  # the server echoes it in `started`
        with turn_span(kwargs.get("model", "")) as span:
            stream = start_call(client, span, messages, reply.request_id, **kwargs)
            self.streams.add(request.session_hash, stream)
            failure = error = None
            display = [*values[self.display], {"role": "user", "content": question}]
            shown = [*display, {"role": "assistant", "content": ""}]
            yield {self.message: "", self.chatbot: shown, self.status: "Generating…"}
            try:
                refreshed = time.monotonic()
                for event in stream:
                    reply.apply(event)
                    due = time.monotonic() - refreshed >= REFRESH_SECONDS
                    at_once = event.HasField("citations") or event.HasField("guardrail")
                    if at_once or (due and reply.shown):  # sources and notices at once
                        shown[-1]["content"] = reply.shown
                        yield {self.chatbot: shown}
                        refreshed = time.monotonic()
            except BACKEND_ERRORS as exc:
                failure, error = exc, describe_error(exc, client.target)
                METRICS.count_error(exc)
            finally:
                self.streams.discard(request.session_hash, stream)
                METRICS.chat_turns.labels(kwargs.get("model", ""), reply.outcome(error)).inc()
                finish_span(span, reply.request_id, reply.model, reply.finished, failure)

        if error is not None and not reply.text:  # nothing answered: keep it to retry
            shown[-1]["content"] = "*No answer: see the error below.*"
            status = f"{error}\n\nrequest {reply.request_id}"
            yield {self.message: question, self.chatbot: shown, self.status: status}
            return
        if not reply.text and not reply.guardrails:  # an empty answer: nothing to keep
            shown.pop()
            yield {self.chatbot: shown, self.status: f"No answer: {reply.usage_line()}"}
            return
        # An answer, partial or whole, or the guardrails' notice: it stays with its usage.
        shown[-1]["content"] = reply.with_usage
        if reply.text and not blocked_at_input(reply.guardrails):
            history = [*messages, {"role": "assistant", "content": reply.text}]
        # else: a question the model never saw is not resent with later turns
        yield {
            self.chatbot: shown,
            self.history: history,
            self.display: shown,
            self.status: error or "",
        }


def build_chat_tab(app: gr.Blocks, client_factory: ClientFactory) -> ChatTab:
    """Lay out the Chat tab inside the current `gr.Tab` and wire its events."""
    return ChatTab(app, client_factory)
