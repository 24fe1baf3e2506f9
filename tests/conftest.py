"""Shared fixtures: tiny random models, and real server processes on 127.0.0.1."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from backend.launcher import BackendProcess
from tests.tiny_model import make_tiny_model

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Test runs must not write into the project's daily-log/.
os.environ["CHATFORGE_DAILY_LOG"] = tempfile.mkdtemp(prefix="daily-log-")

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_registry(tmp_path_factory, tiny_model_dir) -> Path:
    """Two tiny models in a models.yaml: `tiny` (the default) and `tiny-b`, whose engine
    takes one request at a time with a queue of one, to make back-pressure testable."""
    other = make_tiny_model(tmp_path_factory.mktemp("tiny-b") / "model", seed=1)
    path = tmp_path_factory.mktemp("registry") / "models.yaml"
    path.write_text(
        f"models:\n"
        f"  tiny:\n    checkpoint: {tiny_model_dir}\n    default: true\n"
        f"  tiny-b:\n    checkpoint: {other}\n    max_active: 1\n    max_queue: 1\n"
    )
    return path


@pytest.fixture(scope="session")
def tiny_server(tiny_registry, tmp_path_factory):
    """A real server process serving the tiny models; shared by the session."""
    log = tmp_path_factory.mktemp("logs") / "tiny-server.log"
    with BackendProcess(tiny_registry, log_path=log) as server:
        yield server


@pytest.fixture(scope="session")
def default_server(tmp_path_factory):
    """A real server process with the real default model (SmolLM2-135M-Instruct)."""
    log = tmp_path_factory.mktemp("logs") / "default-server.log"
    with BackendProcess(log_path=log) as server:
        yield server
