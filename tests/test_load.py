"""The load test runs locust against a real server and summarises what it measured."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cost import load_prices
from bench.load import percentile

REPO = Path(__file__).resolve().parent.parent


def test_percentile_from_histogram():
    histogram = {"10": 50, "20": 45, "90": 5}
    assert percentile(histogram, 0.5) == 10
    assert percentile(histogram, 0.95) == 20
    assert percentile(histogram, 0.99) == 90
    assert percentile({}, 0.5) == 0.0


def test_load_run_against_a_server(tiny_server, tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "load.py"), "--target", tiny_server.target,
         "--users", "2", "--spawn-rate", "2", "--duration", "6s", "--max-tokens", "8",
         "--out", str(tmp_path), "--hardware", "cpu_host"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (report,) = tmp_path.glob("load-*.json")
    summary = json.loads(report.read_text())["summary"]
    assert summary["requests"] >= 2
    assert summary["failures"] == 0
    assert 0 < summary["ttft_p50_ms"] <= summary["stream_p95_ms"]
    assert summary["completion_tokens_per_s"] > 0
    assert "streams," in result.stdout
    # The cost at the measured rate, from the price table, printed and in the summary
    # (which is also the daily-log entry's numbers).
    hourly = load_prices().hardware["cpu_host"].per_hour
    expected = hourly / (summary["completion_tokens_per_s"] * 3600) * 1000
    assert summary["usd_per_1k_tokens"] == pytest.approx(expected)
    assert f"${expected:.5f} per 1,000 generated tokens" in result.stdout
