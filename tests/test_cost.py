"""Cost per 1,000 generated tokens and per training run from throughput and a price table."""

from __future__ import annotations

import pytest

from bench.cost import load_prices, serving_cost, training_cost


@pytest.fixture
def prices(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(
        "hardware:\n"
        "  gpu_vm: {machine: one L4, per_hour: 0.72}\n"
        "  cpu_host: {machine: e2, per_hour: 0.072}\n"
        "cloud_run: {per_million_requests: 0.4, per_vcpu_second: 0.000024,\n"
        "            per_gib_second: 0.0000025, vcpu: 1, gib: 1}\n"
    )
    return load_prices(path)


def test_serving_cost_per_thousand_tokens(prices):
    cost = serving_cost(prices, "gpu_vm", tokens_per_s=200.0, tokens_per_answer=100)
    # 0.72 $/h over 720,000 tokens an hour: $0.001 per 1,000 tokens.
    assert cost["usd_per_1k_tokens_backend"] == pytest.approx(0.001)
    # One request (0.4 $/M) open for 0.5 s at 1 vCPU + 1 GiB, per 100 tokens, times 10.
    ui = (0.4e-6 + 0.5 * (0.000024 + 0.0000025)) * 10
    assert cost["usd_per_1k_tokens_ui"] == pytest.approx(ui)
    assert cost["hardware"] == "one L4"


def test_training_run_cost(prices):
    cost = training_cost(prices, "cpu_host", tokens_per_s=1000.0, run_tokens=7_200_000)
    assert cost["run_hours"] == pytest.approx(2.0)
    assert cost["usd_per_run"] == pytest.approx(0.144)
    assert cost["usd_per_1m_tokens"] == pytest.approx(0.02)


def test_the_shipped_table_loads_and_a_bad_one_is_named(tmp_path):
    assert load_prices().hardware["gpu_vm"].per_hour > 0
    bad = tmp_path / "prices.yaml"
    bad.write_text("hardware:\n  gpu_vm: {machine: x, per_hour: -1}\ncloud_run: {}\n")
    with pytest.raises(SystemExit, match="price table .*prices.yaml"):
        load_prices(bad)
