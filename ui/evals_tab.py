"""The Evals tab: run a suite on one or more served models, read the failures, compare runs.

Design decisions:
- Runs go through the evals runner with a live target (`LiveTarget`, gRPC only), so a run
  from the UI is the same run as `python -m evals run ... --target HOST:PORT`: the same
  results file, the same copy into the model's evals/ (through `RecordEval`) and the same
  daily-log entry. The runner's progress callback drives the Gradio progress bar.
- Stored runs are read from the server's `GetModel` cards (their `evals/` files), never
  from local folders, so the tab works on a UI host with no files; runs made in this
  session are listed too, in case the server could not store them (a hub-id model).
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
from evals.results import RunResult, parse_results
from evals.runner import run_suite
from evals.suites import SUITES, SuiteConfig, get_suite
from evals.targets import LiveTarget
from ui.chat_tab import ClientFactory
from ui.errors import BACKEND_ERRORS, describe_error
from ui.users import Users, role_of

Runs = dict[str, RunResult]  # "model/file name" -> result
METRIC_COLUMNS = ["model", "suite", "metric", "value", "ci_low", "ci_high", "n", "better"]
TEXT_COLUMNS = ["input", "reference", "output"]


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def rounded(value: Any) -> Any:
    return float(f"{value:.4g}") if isinstance(value, float) else value


def metrics_frame(runs: list[RunResult]) -> pd.DataFrame:
    rows = []
    for result in runs:
        for spec in result.metrics:
            agg = result.aggregates.get(spec.name)
            if agg is None:
                continue
            rows.append(
                {
                    "model": result.model,
                    "suite": result.suite,
                    "metric": spec.name,
                    "value": rounded(agg.value),
                    "ci_low": rounded(agg.ci_low),
                    "ci_high": rounded(agg.ci_high),
                    "n": agg.n,
                    "better": "higher" if spec.higher_is_better else "lower",
                }
            )
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


def card_results(card: chat_pb2.ModelCard) -> dict[str, RunResult]:
    """The evals results files of one model card, by file name."""
    results = {}
    for stored in card.evals:
        try:
            results[stored.name] = parse_results(stored.results_json, stored.name)
        except EvalError:
            continue  # not an evals results file (notes, say)
    return results


def stored_runs(client, models: list[str] | None = None) -> Runs:
    """Every results file in the served models' evals/ folders (via GetModel), keyed
    `model/file`; `models` skips the ListModels call when the caller has the names."""
    if models is None:
        models = [m.name for m in client.list_models().models]
    return {
        f"{name}/{file}": result
        for name in models
        for file, result in card_results(client.get_model(name)).items()
    }


class EvalsTab:
    def __init__(
        self, app: gr.Blocks, client_factory: ClientFactory, users: Users | None = None
    ) -> None:
        self.client_factory = client_factory
        self.users = users
        self.session_runs = gr.State({})  # runs made here, kept if the server cannot store
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
        self.refresh.click(self.load, self.session_runs, listing)
        app.load(self.load, self.session_runs, listing)
        self.run.click(
            self.run_suites,
            [self.suite, self.models, self.size, self.session_runs],
            [self.metrics, self.status, self.session_runs, self.inspect, self.run_a, self.run_b],
        ).then(
            self.show,
            [self.inspect, self.failures_only, self.session_runs],
            [self.run_metrics, self.items, self.confusion],
        )
        gr.on(
            [self.inspect.change, self.failures_only.change],
            self.show,
            [self.inspect, self.failures_only, self.session_runs],
            [self.run_metrics, self.items, self.confusion],
        )
        self.compare.click(
            self.compare_two, [self.run_a, self.run_b, self.session_runs], self.comparison
        )

    def _all_runs(self, session_runs: Runs, models: list[str] | None = None) -> Runs:
        return {**stored_runs(self.client_factory(), models), **session_runs}

    def _refusal(self, request: gr.Request | None) -> str | None:
        """Why this signed-in user may not run suites, or None when they may."""
        username = getattr(request, "username", None)
        if role_of(self.users, username) == "admin":
            return None
        return (
            f"Running a suite writes results, which needs an admin user; `{username}` "
            "can read and compare the stored runs."
        )

    def load(self, session_runs: Runs, request: gr.Request) -> tuple[Any, ...]:
        refusal = self._refusal(request)
        run_button = gr.Button(visible=refusal is None)
        client = self.client_factory()
        try:
            listing = client.list_models()
            runs = self._all_runs(session_runs, [m.name for m in listing.models])
        except BACKEND_ERRORS as error:
            message = describe_error(error, client.target)
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), message, run_button
        names = [m.name for m in listing.models]
        keys = sorted(runs, reverse=True)
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
        session_runs: Runs,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008 (Gradio injects the tracker)
    ):
        refusal = self._refusal(request)
        if refusal:
            return gr.skip(), refusal, session_runs, *[gr.skip()] * 3
        if not models:
            return gr.skip(), "Pick at least one model.", session_runs, *[gr.skip()] * 3
        config = SuiteConfig(size=int(size) if size else None)
        client = self.client_factory()
        done: list[RunResult] = []
        session_runs = dict(session_runs)
        try:
            get_suite(suite)
            for model in models:
                target = LiveTarget(client.target, model=model, settings=client.settings)
                try:

                    def report(finished: int, total: int, model=model) -> None:
                        progress((finished, total), desc=f"{suite} on {model}", unit="items")

                    outcome = run_suite(
                        suite,
                        target,
                        config,
                        progress=report,
                        command=f"(UI) python -m evals run {suite} --model {model}",
                    )
                finally:
                    target.close()
                done.append(outcome.result)
                session_runs[f"{model}/{outcome.run_dir.name}.json"] = outcome.result
            keys = sorted(self._all_runs(session_runs), reverse=True)
        except EvalError as error:
            return gr.skip(), f"**Cannot run:** {error}", session_runs, *[gr.skip()] * 3
        except BACKEND_ERRORS as error:
            return gr.skip(), describe_error(error, client.target), session_runs, *[gr.skip()] * 3
        latest = f"{models[-1]}/{outcome.run_dir.name}.json"
        status = "; ".join(
            f"{r.model}: {plural(len(r.rows), 'item')}, {plural(r.errors, 'error')}, "
            f"{r.duration_s:.1f} s"
            for r in done
        )
        return (
            metrics_frame(done),
            f"Finished {suite}. {status}",
            session_runs,
            gr.Dropdown(choices=keys, value=latest),
            gr.Dropdown(choices=keys),
            gr.Dropdown(choices=keys),
        )

    def _find(self, key: str | None, session_runs: Runs) -> RunResult | None:
        if not key:
            return None
        if key in session_runs:
            return session_runs[key]
        model, _, file = key.rpartition("/")  # file names never hold a slash
        return card_results(self.client_factory().get_model(model)).get(file)

    def show(self, key: str | None, failures_only: bool, session_runs: Runs):
        try:
            result = self._find(key, session_runs)
        except BACKEND_ERRORS:
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

    def compare_two(self, key_a: str | None, key_b: str | None, session_runs: Runs) -> str:
        if not key_a or not key_b:
            return "Pick two runs."
        client = self.client_factory()
        try:
            a, b = self._find(key_a, session_runs), self._find(key_b, session_runs)
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
