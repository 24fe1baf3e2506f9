"""Small helpers shared by the integration tests."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def metric_value(process, name: str, **labels: str) -> float:
    """Sum of the samples of metric `name` (exact sample name) matching `labels`, read
    from a server's or a UI's metrics endpoint."""
    text = urllib.request.urlopen(process.metrics_url, timeout=10).read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def log_lines(process) -> list[dict]:
    """A server's JSON log lines (it logs JSON: its output is a file, not a terminal)."""
    lines = process.log_path.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def finished_log_line(process, request_id: str) -> dict:
    """The one log line a server writes when the call `request_id` ends."""

    def find():
        return [
            line
            for line in log_lines(process)
            if line.get("request_id") == request_id and " finished: " in line["message"]
        ]

    assert wait_for(find, timeout=10), f"no finished line for {request_id}"
    [line] = find()
    return line


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def run_backend(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m backend ARGS` as a user runs it, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "backend", *args], capture_output=True, text=True, timeout=timeout
    )


def text_of(events) -> str:
    """The streamed reply: the text of a Chat stream's deltas, joined."""
    return "".join(e.delta.text for e in events if e.HasField("delta"))


def finished_of(events):
    """The `finished` event that must end a Chat stream."""
    assert events[-1].HasField("finished")
    return events[-1].finished
