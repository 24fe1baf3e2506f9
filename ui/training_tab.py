"""The Training tab: training curves and final numbers of served models, and a side-by-side
chat that streams one prompt from two models at once.

Design decisions:
- Everything comes from `GetModel` cards over gRPC (`metrics` rows from metrics.jsonl,
  `eval_summaries` of evals/, `run_json`), so the tab needs no access to the checkpoint
  folders.
- A model's curve is its whole lineage (the card's `lineage`, then its own run): a
  from-scratch chat model shows pretraining, then SFT, then any fine-tune, one after the
  other on the x axis (each stage continues where the previous one ended), with a labelled
  line where each stage begins.
- Curves are matplotlib figures (one per quantity: loss, learning rate, tokens/s) against
  step, tokens seen or FLOPs, picked by the user; a stage that never logged the chosen axis
  is drawn against its step, and the legend says so. Colour tells the series apart
  (train loss blue, val loss orange, each in the legend) and line style the model, so
  train and val never share a colour. Epoch boundaries are light dotted lines.
- The summary table puts each model's last logged train/val loss next to the newest
  result of every eval suite found beside it (the suite's first metric), one row a model,
  numbers rounded to four significant digits.
- The side-by-side chat has Send and Stop like the Chat tab: it runs the two streams on
  two threads, refreshes both answers together at most every 50 ms (neither model waits
  for the other), and Stop cancels both gRPC calls of this browser session.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import gradio as gr
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from chat.v1 import chat_pb2
from ui.chat_tab import REFRESH_SECONDS, ActiveStreams, ClientFactory, Reply
from ui.errors import BACKEND_ERRORS, describe_error

X_AXES = {"step": "step", "tokens seen": "tokens_seen", "FLOPs": "flops"}
# (panel title, ((field, legend name, colour), ...)): colour tells the series apart
PANELS = [
    ("loss", (("train_loss", "train", "tab:blue"), ("val_loss", "val", "tab:orange"))),
    ("learning rate", (("lr", "lr", "tab:green"),)),
    ("tokens/s", (("tokens_per_second", "tokens/s", "tab:purple"),)),
]
LINE_STYLES = ["-", "--", "-.", ":"]  # one per model


def _value(row: chat_pb2.TrainingMetric, name: str) -> float | None:
    return getattr(row, name) if name == "step" or row.HasField(name) else None


def epoch_boundaries(rows: list[chat_pb2.TrainingMetric]) -> list[int]:
    """Indices of the rows where a new epoch begins (the integer part of `epoch` grows)."""
    marks, last = [], None
    for i, row in enumerate(rows):
        if not row.HasField("epoch"):
            continue
        whole = math.floor(row.epoch + 1e-9)
        if last is not None and whole > last:
            marks.append(i)
        last = whole
    return marks


def stages(card: chat_pb2.ModelCard) -> list[chat_pb2.TrainingStage]:
    """The model's lineage, oldest first, ending with its own run; stages without a
    training log are left out."""
    kind = json.loads(card.run_json).get("kind", "") if card.run_json else ""
    own = chat_pb2.TrainingStage(name=card.name, kind=kind, metrics=card.metrics)
    return [s for s in [*card.lineage, own] if s.metrics]


def stage_label(stage: chat_pb2.TrainingStage) -> str:
    return f"{stage.kind} {stage.name}" if stage.kind else stage.name


def curves_figure(cards: list[chat_pb2.ModelCard], x_label: str):
    """Loss, learning rate and tokens/s against the chosen x axis, every stage of each
    model's lineage in turn; colour a series, line style a model."""
    figure, axes = plt.subplots(1, len(PANELS), figsize=(14, 4.2))
    plotted = 0
    for number, card in enumerate(cards):
        style = LINE_STYLES[number % len(LINE_STYLES)]
        offset = 0.0
        for stage in stages(card):
            rows = list(stage.metrics)
            key = X_AXES[x_label]
            if key != "step" and not all(r.HasField(key) for r in rows):
                key = "step"  # the stage did not log this axis: say so in its legend
            fallback = " (x = step)" if key != X_AXES[x_label] else ""
            xs = [offset + _value(r, key) for r in rows]
            for ax, (_, series) in zip(axes, PANELS, strict=True):
                for field, name, colour in series:
                    points = [(x, _value(r, field)) for x, r in zip(xs, rows, strict=True)]
                    points = [(x, y) for x, y in points if y is not None]
                    if not points:
                        continue
                    ax.plot(
                        *zip(*points, strict=True),
                        style,
                        color=colour,
                        marker="o" if len(points) < 30 else None,
                        markersize=3,
                        label=f"{card.name} {name}{fallback}",
                    )
                    plotted += 1
                for i in epoch_boundaries(rows):
                    ax.axvline(xs[i], color="0.75", linestyle=":", linewidth=0.8)
                if offset:  # where this stage begins
                    ax.axvline(offset, color="0.35", linewidth=1)
                if offset or len(stages(card)) > 1:
                    ax.annotate(
                        stage_label(stage), (offset, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(3, -10), textcoords="offset points", fontsize=7, color="0.3",
                    )  # fmt: skip
            offset = xs[-1] if xs else offset
    for ax, (title, _) in zip(axes, PANELS, strict=True):
        ax.set_title(title)
        ax.set_xlabel(x_label)
        ax.grid(alpha=0.3)
        if ax.lines:
            handles, labels = ax.get_legend_handles_labels()
            unique = dict(zip(labels, handles, strict=True))  # a model's stages share a label
            ax.legend(unique.values(), unique.keys(), fontsize=7)
    figure.tight_layout()
    plt.close(figure)
    return figure if plotted else None


def rounded(value: Any) -> Any:
    """Four significant digits for a float (a loss, a rate); anything else as it is."""
    return float(f"{value:.4g}") if isinstance(value, float) else value


def summary_frame(cards: list[chat_pb2.ModelCard]) -> pd.DataFrame:
    rows = []
    for card in cards:
        row: dict[str, Any] = {
            "model": card.name,
            "parameters (M)": round(card.parameters / 1e6, 2),
        }
        for field in ("train_loss", "val_loss", "tokens_seen"):
            logged = [getattr(m, field) for m in card.metrics if m.HasField(field)]
            row[f"final {field}"] = logged[-1] if logged else None
        if card.run_json:
            final = json.loads(card.run_json).get("final_metrics", {})
            row.update({f"run {k}": v for k, v in final.items() if isinstance(v, int | float)})
        newest: dict[str, tuple[str, str, float | None]] = {}
        for summary in card.eval_summaries:
            if not summary.metrics:
                continue
            metric = summary.metrics[0]
            value = metric.value if metric.HasField("value") else None
            if summary.suite not in newest or summary.started_at > newest[summary.suite][0]:
                newest[summary.suite] = (summary.started_at, metric.name, value)
        for suite, (_, metric_name, value) in sorted(newest.items()):
            row[f"{suite} {metric_name}"] = value
        rows.append({key: rounded(value) for key, value in row.items()})
    return pd.DataFrame(rows)


SIDES = ("left", "right")


class TrainingTab:
    def __init__(self, app: gr.Blocks, client_factory: ClientFactory) -> None:
        self.client_factory = client_factory
        self.streams = ActiveStreams()  # the side-by-side chat's calls, for Stop
        with gr.Row():
            self.models = gr.CheckboxGroup([], label="Models", elem_id="training-models", scale=4)
            self.x_axis = gr.Radio(
                list(X_AXES), value="step", label="x axis", elem_id="training-x-axis"
            )
            self.refresh = gr.Button("Refresh", elem_id="training-refresh", scale=1)
        self.status = gr.Markdown(elem_id="training-status")
        self.curves = gr.Plot(label="Training curves", format="png", elem_id="training-curves")
        self.summary = gr.Dataframe(
            label="Final metrics and eval results", elem_id="training-summary", interactive=False
        )
        with gr.Accordion("Side-by-side chat", open=True):
            with gr.Row():
                self.left_model = gr.Dropdown([], label="Left model", elem_id="duel-left-model")
                self.right_model = gr.Dropdown([], label="Right model", elem_id="duel-right-model")
            with gr.Row():
                self.prompt = gr.Textbox(
                    placeholder="One prompt, sent to both models",
                    show_label=False,
                    elem_id="duel-input",
                    scale=4,
                )
                button = {"scale": 1, "min_width": 80}
                self.send = gr.Button("Send", variant="primary", elem_id="duel-send", **button)
                self.stop = gr.Button("Stop", variant="stop", elem_id="duel-stop", **button)
            self.max_tokens = gr.Slider(
                1,
                1024,
                value=128,
                step=1,
                label="Max tokens (greedy decoding, so the two answers compare)",
                elem_id="duel-max-tokens",
            )
            with gr.Row():
                self.left = gr.Markdown(elem_id="duel-left", min_height=120)
                self.right = gr.Markdown(elem_id="duel-right", min_height=120)
        self.refresh.click(
            self.load, None, [self.models, self.left_model, self.right_model, self.status]
        )
        app.load(self.load, None, [self.models, self.left_model, self.right_model, self.status])
        gr.on(
            [self.models.change, self.x_axis.change],
            self.show,
            [self.models, self.x_axis],
            [self.curves, self.summary, self.status],
        )
        gr.on(
            [self.prompt.submit, self.send.click],
            self.duel,
            [self.prompt, self.left_model, self.right_model, self.max_tokens],
            [self.left, self.right],
            concurrency_limit=None,
        )
        self.stop.click(self.cancel, None, None, queue=False)

    def load(self) -> tuple[Any, ...]:
        client = self.client_factory()
        try:
            listing = client.list_models()
        except BACKEND_ERRORS as error:
            return gr.skip(), gr.skip(), gr.skip(), describe_error(error, client.target)
        names = [m.name for m in listing.models]
        right = names[1] if len(names) > 1 else names[0]
        return (
            gr.CheckboxGroup(choices=names, value=names),
            gr.Dropdown(choices=names, value=names[0]),
            gr.Dropdown(choices=names, value=right),
            "",
        )

    def show(self, models: list[str], x_label: str) -> tuple[Any, Any, str]:
        client = self.client_factory()
        try:
            cards = [client.get_model(name) for name in models]
        except BACKEND_ERRORS as error:
            return None, None, describe_error(error, client.target)
        lineages = [
            f"{card.name} ({' → '.join(stage_label(s) for s in stages(card))})"
            for card in cards
            if stages(card)
        ]
        status = (
            f"Curves from the training logs (metrics.jsonl) of: {'; '.join(lineages)}."
            if lineages
            else "None of these models has a training log (metrics.jsonl)."
        )
        return curves_figure(cards, x_label), summary_frame(cards), status

    def cancel(self, request: gr.Request) -> None:
        for side in SIDES:
            self.streams.cancel(f"{request.session_hash}:{side}")

    def duel(
        self, prompt: str, left: str, right: str, max_tokens: float, request: gr.Request
    ) -> Iterator[tuple]:
        if not prompt.strip():
            yield "Type a prompt first.", ""
            return
        client = self.client_factory()
        replies = [Reply(), Reply()]
        errors: list[str | None] = [None, None]
        sampling = {"temperature": 0.0, "max_tokens": int(max_tokens), "fit_max_tokens": True}

        def read(side: int, model: str) -> None:
            key = f"{request.session_hash}:{SIDES[side]}"
            stream = client.chat(prompt, model=model, sampling=sampling)
            self.streams.add(key, stream)
            try:
                for event in stream:
                    replies[side].apply(event)
            except BACKEND_ERRORS as error:
                errors[side] = describe_error(error, client.target)
            finally:
                self.streams.discard(key, stream)

        threads = [
            threading.Thread(target=read, args=(i, m), daemon=True)
            for i, m in enumerate((left, right))
        ]
        for thread in threads:
            thread.start()
        models = (left, right)
        while any(t.is_alive() for t in threads):
            time.sleep(REFRESH_SECONDS)
            yield tuple(_render(m, r, e) for m, r, e in zip(models, replies, errors, strict=True))
        yield tuple(
            _render(m, r, e, done=True) for m, r, e in zip(models, replies, errors, strict=True)
        )


def _render(model: str, reply: Reply, error: str | None, done: bool = False) -> str:
    footer = error or (reply.usage_line() if done else "…")
    return f"**{reply.model or model}**\n\n{reply.text}\n\n{footer}"


def build_training_tab(app: gr.Blocks, client_factory: ClientFactory) -> TrainingTab:
    """Lay out the Training tab inside the current `gr.Tab` and wire its events."""
    return TrainingTab(app, client_factory)
