"""The Evals tab's side of the API: stored runs' summaries, one run rebuilt from its rows,
and a suite run on the backend.

Design decisions:
- Everything goes over gRPC (GetModel's `eval_summaries`, GetEvalRows, RunEval), so the
  UI host needs no corpus, no checkpoint and no ML stack: suites run on the backend's
  host, where the data is (backend/eval_runs.py), and the UI starts them and shows them.
- A stored run is keyed `model/file` (file names never hold a slash). The summaries are
  enough to list runs and to show their metrics; the rows are fetched only for the run
  being inspected or compared, a page at a time, and rebuilt into the evals' own
  `RunResult` (`header_json` plus the rows under `items`), so the items table, the
  confusion matrix and the comparison are the code `python -m evals` uses.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from backend.client import ChatClient
from chat.v1 import chat_pb2
from evals.results import RunResult, parse_results

Summaries = dict[str, chat_pb2.EvalSummary]  # "model/file" -> summary
# (items done, items in the run, the item that just finished)
ItemProgress = Callable[[int, int, str], None]


def run_key(model: str, name: str) -> str:
    return f"{model}/{name}"


def stored_summaries(client: ChatClient, models: list[str]) -> Summaries:
    """The summaries of every results file in the models' evals/ folders (GetModel)."""
    return {
        run_key(name, summary.name): summary
        for name in models
        for summary in client.get_model(name).eval_summaries
    }


def fetch_run(client: ChatClient, key: str) -> RunResult | None:
    """A stored run with its rows (GetEvalRows, page by page); None when the model no
    longer lists it. EvalError when the file is not a results file the evals can read."""
    model, _, name = key.rpartition("/")
    summary = next((s for s in client.get_model(model).eval_summaries if s.name == name), None)
    if summary is None:
        return None
    data = json.loads(summary.header_json)
    data["items"] = [json.loads(row) for row in client.all_eval_rows(name, model)]
    return parse_results(json.dumps(data), key)


def run_on_backend(
    client: ChatClient, suite: str, model: str, size: int, progress: ItemProgress
) -> chat_pb2.EvalSummary:
    """Run a suite on the backend (RunEval), reporting each finished item; its summary."""
    for event in client.run_eval(suite, model=model, size=size):
        if event.HasField("started"):
            progress(0, event.started.total, "")
        elif event.HasField("item"):
            progress(event.item.done, event.item.total, event.item.item_id)
        else:
            return event.finished
    raise RuntimeError("RunEval ended without its `finished` message")  # a server bug
