"""RunEval and GetEvalRows against real server processes on 127.0.0.1: a suite run on the
server's host streams its progress and is recorded in the model's evals/, GetModel carries
summaries only, rows come a page at a time, bad requests say what to fix, user keys are
refused, and cancelling the call stops the run's process."""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import pytest

from backend.client import ChatClient
from backend.settings import ClientSettings

pytestmark = pytest.mark.slow


def children(pid: int) -> list[str]:
    """Command lines of a process's child processes."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                found.append(Path(f"/proc/{child}/cmdline").read_text().replace("\0", " "))
            except FileNotFoundError:
                continue  # it ended meanwhile
    return found


def results_file(rows: int) -> str:
    """A minimal results file with `rows` items, as `python -m evals run` writes them."""
    return json.dumps({
        "format": 1, "suite": "smoke", "suite_version": "1", "model": "tiny",
        "metrics": [{"name": "pass_rate", "kind": "mean", "field": "passed",
                     "description": "share of checks passed", "higher_is_better": True}],
        "aggregates": {"pass_rate": {"value": 0.5, "ci_low": 0.1, "ci_high": 0.9, "n": rows}},
        "items": [{"id": f"item-{i}", "output": "x" * i, "error": "boom" if i == 0 else ""}
                  for i in range(rows)],
        "started_at": "2026-01-01T00:00:00+00:00", "duration_s": 1.5,
    })  # fmt: skip


def test_a_suite_runs_on_the_server_and_is_recorded(tiny_server, tiny_evals_dir):
    with ChatClient(tiny_server.target) as client:
        events = list(client.run_eval("smoke", model="tiny-b"))  # six checks, whatever the size
        started, *items, finished = events
        assert started.started.total == 6 and started.started.model == "tiny-b"
        assert [e.item.done for e in items] == [1, 2, 3, 4, 5, 6]
        assert all(e.item.item_id and e.item.total == 6 for e in items)
        summary = finished.finished
        assert summary.suite == "smoke" and summary.model == "tiny-b" and summary.items == 6
        assert {m.name for m in summary.metrics} >= {"pass_rate"}
        assert json.loads(summary.header_json)["suite"] == "smoke"
        # recorded in tiny-b's own evals/ folder, which GetModel summarises
        card = client.get_model("tiny-b")
        assert card.eval_summaries[0].name == summary.name
        folder = Path(card.source) / "evals"
        try:
            assert (folder / summary.name).is_file()
            rows = [json.loads(r) for r in client.all_eval_rows(summary.name, "tiny-b")]
            assert [r["id"] for r in rows] == [e.item.item_id for e in items]
        finally:
            (folder / summary.name).unlink()


def test_rows_come_a_page_at_a_time(tiny_server, tiny_evals_dir):
    with ChatClient(tiny_server.target) as client:
        client.record_eval("20260101-000000-smoke-tiny.json", results_file(5), model="tiny")
        client.record_eval("notes.json", json.dumps({"note": "not a results file"}), "tiny")
        summaries = client.get_model("tiny").eval_summaries
        assert [s.name for s in summaries] == ["20260101-000000-smoke-tiny.json"]
        summary = summaries[0]
        assert (summary.items, summary.errors, summary.duration_s) == (5, 1, 1.5)
        assert summary.metrics[0].value == 0.5 and summary.metrics[0].n == 5

        ids, token, pages = [], "", 0
        while True:
            page = client.eval_rows(summary.name, "tiny", page_size=2, page_token=token)
            assert page.total == 5 and len(page.rows_json) <= 2
            ids += [json.loads(r)["id"] for r in page.rows_json]
            pages, token = pages + 1, page.next_page_token
            if not token:
                break
        assert pages == 3 and ids == [f"item-{i}" for i in range(5)]
        # the same file written again is read again (parsed files are cached by version)
        client.record_eval(summary.name, results_file(3), model="tiny")
        assert client.get_model("tiny").eval_summaries[0].items == 3
        assert len(client.all_eval_rows(summary.name, "tiny")) == 3

        problems = [
            (dict(name=summary.name, page_token="bm90IGEgdG9rZW4"), "INVALID_ARGUMENT",
             "page_token"),
            (dict(name="notes.json", page_token=client.eval_rows(summary.name, "tiny", 2)
                  .next_page_token), "INVALID_ARGUMENT", "page_token"),
            (dict(name=summary.name, page_size=5000), "INVALID_ARGUMENT", "1 to 1000"),
            (dict(name="../run.json"), "INVALID_ARGUMENT", "plain file name"),
            (dict(name="missing.json"), "NOT_FOUND", "eval_summaries"),
            (dict(name="notes.json"), "FAILED_PRECONDITION", "not an evals results file"),
        ]  # fmt: skip
        for kwargs, code, words in problems:
            with pytest.raises(grpc.RpcError) as error:
                client.eval_rows(model="tiny", **kwargs)
            assert error.value.code().name == code, kwargs
            assert words in error.value.details()


@pytest.mark.parametrize(
    ("kwargs", "code", "words"),
    [
        (dict(suite="nope"), "INVALID_ARGUMENT", "use one of smoke, perplexity"),
        (dict(suite="smoke", model="nope"), "INVALID_ARGUMENT", "this server has: tiny"),
        (dict(suite="smoke", size=-1), "INVALID_ARGUMENT", "0 for the suite's small default"),
        # the suite reads a corpus this host does not have: the evals CLI's own message
        (dict(suite="perplexity", size=1), "FAILED_PRECONDITION", "python -m training data"),
    ],
)
def test_bad_runs_say_what_to_fix(tiny_server, kwargs, code, words):
    with ChatClient(tiny_server.target) as client, pytest.raises(grpc.RpcError) as error:
        list(client.run_eval(**kwargs))
    assert error.value.code().name == code
    assert words in error.value.details()


def test_runs_need_an_admin_key_and_the_run_gets_its_own(locked_server, keys, tiny_evals_dir):
    user = ClientSettings(api_key=keys["user"])
    with (
        ChatClient(locked_server.target, settings=user) as client,
        pytest.raises(grpc.RpcError) as error,
    ):
        list(client.run_eval("smoke", size=1))
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "needs an admin key" in error.value.details()
    admin = ClientSettings(api_key=keys["admin"])
    with ChatClient(locked_server.target, settings=admin) as client:
        *_, finished = client.run_eval("smoke")
    # the child called the locked server back (Chat, RecordEval) with a key of its own
    assert finished.finished.items == 6 and finished.finished.errors == 0
    assert (tiny_evals_dir / finished.finished.name).is_file()
    assert keys["admin"] not in locked_server.log_path.read_text()


def test_cancelling_the_call_stops_the_run(tiny_server, tiny_evals_dir):
    pid = tiny_server.process.pid
    with ChatClient(tiny_server.target) as client:
        call = client.run_eval("latency", model="tiny", size=10_000)
        for event in call:
            if event.HasField("item"):
                break
        assert any("evals run latency" in c for c in children(pid))
        call.cancel()
    deadline = time.monotonic() + 20
    while any("evals run" in c for c in children(pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any("evals run" in c for c in children(pid))
    assert not list(tiny_evals_dir.glob("*-latency-tiny.json"))  # nothing recorded
