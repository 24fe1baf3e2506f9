"""Cost from measured throughput and the price table in deploy/prices.yaml.

Design decisions:
- Prices live in a config file, not in code: they change, and differ by region and
  discount; every benchmark reads the same file (`--prices` to use another).
- Serving cost per 1,000 generated tokens is the host's hourly price over the tokens it
  generates in an hour at the measured rate. A single-stream rate is the worst case;
  the load test's aggregate rate over concurrent streams is what a busy server costs.
- The UI's share is Cloud Run's: one request per answer, billed for its vCPU and memory
  while the answer streams (tokens / tokens per second).
- The hardware is the GPU VM when an NVIDIA device is present, else the CPU host; a
  benchmark against a remote server says which with `--hardware`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, PositiveFloat, ValidationError

DEFAULT_PRICES = Path(__file__).resolve().parent.parent / "deploy" / "prices.yaml"
Hardware = Literal["gpu_vm", "cpu_host"]


class HostPrice(BaseModel):
    machine: str
    per_hour: PositiveFloat


class CloudRunPrice(BaseModel):
    per_million_requests: float
    per_vcpu_second: float
    per_gib_second: float
    vcpu: PositiveFloat
    gib: PositiveFloat


class Prices(BaseModel):
    hardware: dict[Hardware, HostPrice]
    cloud_run: CloudRunPrice


def load_prices(path: Path | str = DEFAULT_PRICES) -> Prices:
    path = Path(path)
    try:
        return Prices.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError, ValidationError) as error:
        raise SystemExit(f"error: price table {path}: {error}") from None


def detect_hardware() -> Hardware:
    return "gpu_vm" if Path("/dev/nvidia0").exists() else "cpu_host"


def serving_cost(
    prices: Prices, hardware: Hardware, tokens_per_s: float, tokens_per_answer: float
) -> dict[str, float | str]:
    """USD per 1,000 generated tokens on the backend host and on the UI's Cloud Run."""
    host = prices.hardware[hardware]
    run = prices.cloud_run
    seconds = tokens_per_answer / tokens_per_s if tokens_per_s > 0 else float("inf")
    per_answer = run.per_million_requests / 1e6 + seconds * (
        run.vcpu * run.per_vcpu_second + run.gib * run.per_gib_second
    )
    backend = host.per_hour / (tokens_per_s * 3600) * 1000 if tokens_per_s > 0 else float("inf")
    return {
        "hardware": host.machine,
        "usd_per_hour": host.per_hour,
        "usd_per_1k_tokens_backend": backend,
        "usd_per_1k_tokens_ui": per_answer / tokens_per_answer * 1000,
    }


def training_cost(
    prices: Prices, hardware: Hardware, tokens_per_s: float, run_tokens: int
) -> dict[str, float | str]:
    """USD per million training tokens and for a run of `run_tokens`, with its hours."""
    host = prices.hardware[hardware]
    hours = run_tokens / tokens_per_s / 3600
    return {
        "hardware": host.machine,
        "usd_per_hour": host.per_hour,
        "usd_per_1m_tokens": host.per_hour / (tokens_per_s * 3600) * 1e6,
        "run_tokens": run_tokens,
        "run_hours": hours,
        "usd_per_run": hours * host.per_hour,
    }


def describe_serving(cost: dict) -> str:
    return (
        f"cost on {cost['hardware']} (${cost['usd_per_hour']:.3f}/h): "
        f"${cost['usd_per_1k_tokens_backend']:.5f} per 1,000 generated tokens, "
        f"+ ${cost['usd_per_1k_tokens_ui']:.5f} for the UI on Cloud Run"
    )


def add_cost_flags(parser) -> None:
    parser.add_argument(
        "--hardware",
        choices=["gpu_vm", "cpu_host"],
        default=None,
        help="whose hourly price applies (default: gpu_vm when an NVIDIA GPU is present)",
    )
    parser.add_argument("--prices", default=str(DEFAULT_PRICES), help="price table YAML")
