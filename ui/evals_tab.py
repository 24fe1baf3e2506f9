"""The Evals tab: run a suite on one or more served models, read the failures, compare runs.

Design decisions:
- Suites run on the backend (the RunEval RPC, ui/eval_client.py), where the corpus and
  the checkpoints are: a run from the UI is `python -m evals run` on the backend's host,
  with the same results file, copy in the model's evals/ and daily-log entry, so the UI
  (on Cloud Run) needs no corpus and no ML stack. Each finished item the backend streams
  moves the Gradio progress bar.
- Stored runs are listed from the server's `GetModel` summaries and a run's rows fetched
  with GetEvalRows when it is inspected or compared, never from local folders; the
  metrics table of a run just made is its summary.
- The per-item table is the error-analysis view: one row per item with its scores, input,
  reference and output, filterable to failures (errors and items that did not pass).
- Running a suite writes (results on the server through `RecordEval`, a run folder, the
  daily log), so behind a login only `admin` users see the Run button, and the handler
  checks the role again: a hidden button is not a permission. Reading and comparing
  stored runs is open to every signed-in user.
- Suites whose items carry a label and a prediction are classifications: their confusion
  matrix (a pandas crosstab, drawn with matplotlib; the UI image has no scikit-learn) is
  shown, for `choice` gold letter against picked letter, which shows a bias towards an
  option position. For any other suite the panel is hidden, not left empty.
- Tables always have their real column names, even empty (Gradio draws "1 2 3" for a
  table without columns); numbers are rounded to four significant digits; the items
  table gives the text columns (input, reference, output) the width the numbers leave.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import matplotlib

matplotlib.use("Agg")  # no display on a server
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from chat.v1 import chat_pb2
from evals.compare import compare_runs, markdown_comparison
from evals.errors import EvalError
from evals.report import metrics_table
from evals.results import RunResult
from evals.suites import SUITES
from ui.chat_tab import ClientFactory
from ui.errors import BACKEND_ERRORS, describe_error
from ui.eval_client import fetch_run, run_key, run_on_backend, stored_summaries
from ui.users import Users, role_of

METRIC_COLUMNS = ["model", "suite", "metric", "value", "ci_low", "ci_high", "n", "better"]
TEXT_COLUMNS = ["input", "reference", "output"]


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def rounded(value: Any) -> Any:
    return float(f"{value:.4g}") if isinstance(value, float) else value


def _optional(metric: chat_pb2.EvalMetric, field: str) -> float | None:
    return rounded(getattr(metric, field)) if metric.HasField(field) else None


def metrics_frame(summaries: list[chat_pb2.EvalSummary]) -> pd.DataFrame:
    rows = [
        {
            "model": summary.model,
            "suite": summary.suite,
            "metric": metric.name,
            "value": _optional(metric, "value"),
            "ci_low": _optional(metric, "ci_low"),
            "ci_high": _optional(metric, "ci_high"),
            "n": metric.n,
            "better": "higher" if metric.higher_is_better else "lower",
        }
        for summary in summaries
        for metric in summary.metrics
    ]
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def items_frame(result: RunResult | None, failures_only: bool) -> pd.DataFrame:
    if result is None:
        return pd.DataFrame(columns=["id", "status", *TEXT_COLUMNS])
    rows = result.failures if failures_only else result.rows
    score_names = sorted({name for row in result.rows for name in row.scores})
    return pd.DataFrame(
        [
            {
                "id": r.id,
                "status": _status(r),
                **{name: rounded(r.scores.get(name)) for name in score_names},
                "input": r.input,
                "reference": r.reference,
                "output": r.error or r.output,
            }
            for r in rows
        ],
        columns=["id", "status", *score_names, "input", "reference", "output"],
    )


def column_widths(frame: pd.DataFrame) -> list[str]:
    """Narrow id, status and score columns; the text columns share what is left."""
    narrow = {"id": 12, "status": 6}
    widths = [narrow.get(c, 7) for c in frame.columns if c not in TEXT_COLUMNS]
    text = max(15, (100 - sum(widths)) // len(TEXT_COLUMNS))
    return [f"{text if c in TEXT_COLUMNS else narrow.get(c, 7)}%" for c in frame.columns]


def _status(row) -> str:
    if row.error:
        return "error"
    return {True: "pass", False: "fail", None: ""}[row.passed]


def confusion_figure(result: RunResult | None):
    labelled = [r for r in result.rows if r.label and not r.error] if result else []
    if not labelled:
        return None
    labels = sorted({r.label for r in labelled} | {r.prediction for r in labelled})
    counts = pd.crosstab(
        pd.Categorical([r.label for r in labelled], categories=labels),
        pd.Categorical([r.prediction for r in labelled], categories=labels),
        dropna=False,
    )
    figure, axes = plt.subplots(figsize=(4.5, 4))
    axes.imshow(counts.to_numpy(), cmap="Blues")
    for (i, j), n in np.ndenumerate(counts.to_numpy()):
        axes.text(j, i, str(n), ha="center", va="center")
    axes.set_xticks(range(len(labels)), labels)
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("expected")
    axes.set_title(f"{result.suite} on {result.model}")
    figure.tight_layout()
    plt.close(figure)
    return figure


class EvalsTab:
    def __init__(
        self, app: gr.Blocks, client_factory: ClientFactory, users: Users | None = None
    ) -> None:
        self.client_factory = client_factory
        self.users = users
        with gr.Row():
            with gr.Column(scale=2):
                self.suite = gr.Dropdown(
                    list(SUITES), value="smoke", label="Suite", elem_id="evals-suite"
                )
                self.models = gr.CheckboxGroup([], label="Models", elem_id="evals-models")
                self.size = gr.Number(
                    0,
                    precision=0,
                    minimum=0,
                    elem_id="evals-size",
                    label="Items (0: the suite's small default)",
                )
                with gr.Row():
                    self.run = gr.Button("Run", variant="primary", elem_id="evals-run")
                    self.refresh = gr.Button("Refresh", elem_id="evals-refresh")
                self.status = gr.Markdown(elem_id="evals-status")
            with gr.Column(scale=3):
                self.metrics = gr.Dataframe(
                    metrics_frame([]),
                    label="Metrics (95% bootstrap intervals)",
                    elem_id="evals-metrics",
                    interactive=False,
                )
        with gr.Row():
            self.inspect = gr.Dropdown([], label="Run to inspect", elem_id="evals-inspect", scale=4)
            self.failures_only = gr.Checkbox(label="Failures only", elem_id="evals-failures")
        self.run_metrics = gr.Markdown(elem_id="evals-run-metrics")
        empty = items_frame(None, False)
        self.items = gr.Dataframe(
            empty,
            label="Items",
            elem_id="evals-items",
            interactive=False,
            wrap=True,
            column_widths=column_widths(empty),
        )
        self.confusion = gr.Plot(
            label="Confusion matrix", format="png", elem_id="evals-confusion", visible=False
        )
        with gr.Accordion("Compare two runs", open=False):
            with gr.Row():
                self.run_a = gr.Dropdown([], label="A (before)", elem_id="evals-compare-a")
                self.run_b = gr.Dropdown([], label="B (after)", elem_id="evals-compare-b")
                self.compare = gr.Button("Compare", elem_id="evals-compare")
            self.comparison = gr.Markdown(elem_id="evals-comparison")

        listing = [self.models, self.inspect, self.run_a, self.run_b, self.status, self.run]
        self.refresh.click(self.load, None, listing)
        app.load(self.load, None, listing)
        self.run.click(
            self.run_suites,
            [self.suite, self.models, self.size],
            [self.metrics, self.status, self.inspect, self.run_a, self.run_b],
        ).then(
            self.show,
            [self.inspect, self.failures_only],
            [self.run_metrics, self.items, self.confusion],
        )
        gr.on(
            [self.inspect.change, self.failures_only.change],
            self.show,
            [self.inspect, self.failures_only],
            [self.run_metrics, self.items, self.confusion],
        )
        self.compare.click(self.compare_two, [self.run_a, self.run_b], self.comparison)

    def _refusal(self, request: gr.Request | None) -> str | None:
        """Why this signed-in user may not run suites, or None when they may."""
        username = getattr(request, "username", None)
        if role_of(self.users, username) == "admin":
            return None
        return (
            f"Running a suite writes results, which needs an admin user; `{username}` "
            "can read and compare the stored runs."
        )

    @staticmethod
    def _stored_keys(client, models: list[str]) -> list[str]:
        """Every stored run of the models, newest first within each model."""
        return sorted(stored_summaries(client, models), reverse=True)

    def load(self, request: gr.Request) -> tuple[Any, ...]:
        refusal = self._refusal(request)
        run_button = gr.Button(visible=refusal is None)
        client = self.client_factory()
        try:
            listing = client.list_models()
            names = [m.name for m in listing.models]
            keys = self._stored_keys(client, names)
        except BACKEND_ERRORS as error:
            message = describe_error(error, client.target)
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), message, run_button
        status = f"{plural(len(names), 'model')} served, {plural(len(keys), 'stored run')}."
        return (
            gr.CheckboxGroup(choices=names, value=[listing.default_model or names[0]]),
            gr.Dropdown(choices=keys, value=keys[0] if keys else None),
            gr.Dropdown(choices=keys),
            gr.Dropdown(choices=keys),
            f"{status} {refusal}" if refusal else status,
            run_button,
        )

    def run_suites(
        self,
        suite: str,
        models: list[str],
        size: float | None,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008 (Gradio injects the tracker)
    ):
        refusal = self._refusal(request)
        if refusal:
            return gr.skip(), refusal, *[gr.skip()] * 3
        if not models:
            return gr.skip(), "Pick at least one model.", *[gr.skip()] * 3
        client = self.client_factory()
        done: list[chat_pb2.EvalSummary] = []
        try:
            for model in models:

                def report(finished: int, total: int, item: str, model=model) -> None:
                    where = f"{suite} on {model}" + (f": {item}" if item else "")
                    progress((finished, total), desc=where, unit="items")

                done.append(run_on_backend(client, suite, model, int(size or 0), report))
            keys = self._stored_keys(client, [m.name for m in client.list_models().models])
        except BACKEND_ERRORS as error:
            return gr.skip(), describe_error(error, client.target), *[gr.skip()] * 3
        stored = [run_key(s.model, s.name) for s in done if s.name]
        status = "; ".join(
            f"{s.model}: {plural(s.items, 'item')}, {plural(s.errors, 'error')}, "
            f"{s.duration_s:.1f} s" + ("" if s.name else " (not stored: the model has no folder)")
            for s in done
        )
        return (
            metrics_frame(done),
            f"Finished {suite}. {status}",
            gr.Dropdown(choices=keys, value=stored[-1] if stored else None),
            gr.Dropdown(choices=keys),
            gr.Dropdown(choices=keys),
        )

    def show(self, key: str | None, failures_only: bool):
        try:
            result = fetch_run(self.client_factory(), key) if key else None
        except (*BACKEND_ERRORS, EvalError):
            return gr.skip(), gr.skip(), gr.skip()
        items = items_frame(result, failures_only)
        table = gr.Dataframe(items, column_widths=column_widths(items))
        if result is None:
            return "", table, gr.Plot(None, visible=False)
        heading = (
            f"**{result.suite} v{result.suite_version} on {result.model}**, "
            f"{plural(len(result.rows), 'item')}, {plural(result.errors, 'error')}, "
            f"{result.started_at}\n\n"
        )
        figure = confusion_figure(result)
        return heading + metrics_table(result), table, gr.Plot(figure, visible=figure is not None)

    def compare_two(self, key_a: str | None, key_b: str | None) -> str:
        if not key_a or not key_b:
            return "Pick two runs."
        client = self.client_factory()
        try:
            a, b = fetch_run(client, key_a), fetch_run(client, key_b)
            if a is None or b is None:
                return "One of the runs is no longer stored on the server; refresh the list."
            return markdown_comparison(compare_runs(a, b), key_a, key_b)
        except EvalError as error:
            return f"**Cannot compare:** {error}"
        except BACKEND_ERRORS as error:
            return describe_error(error, client.target)


def build_evals_tab(
    app: gr.Blocks, client_factory: ClientFactory, users: Users | None = None
) -> EvalsTab:
    """Lay out the Evals tab inside the current `gr.Tab` and wire its events; `users`
    (None: no login, everyone is admin) decides who may run suites."""
    return EvalsTab(app, client_factory, users)
