"""`python -m ui` without a browser: where its settings come from, what it says about bad
ones, and that the UI runs without the ML stack (the Cloud Run image does not have it)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from ui.__main__ import parse_all


def run_ui(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ui", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_port_and_backend_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("CHATFORGE_BACKEND", "backend.internal:50051")
    args = parse_all([])[0]
    assert (args.port, args.backend, args.host) == (8123, "backend.internal:50051", "127.0.0.1")
    args = parse_all(["--port", "9000", "--backend", "10.0.0.5:7000", "--host", "0.0.0.0"])[0]
    assert (args.port, args.backend, args.host) == (9000, "10.0.0.5:7000", "0.0.0.0")


def test_defaults_without_environment(monkeypatch):
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.delenv("CHATFORGE_BACKEND", raising=False)
    args = parse_all([])[0]
    assert (args.port, args.backend, args.share) == (7860, "127.0.0.1:50051", False)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--port", "http"], {}, "--port (or $PORT): 'http' is not a port number"),
        (["--port", "70000"], {}, "'70000' is not a port number"),
        ([], {"PORT": "eighty"}, "--port (or $PORT): 'eighty' is not a port number"),
        (["--backend", "localhost"], {}, "(or $CHATFORGE_BACKEND): 'localhost' is not HOST:PORT"),
        ([], {"CHATFORGE_BACKEND": "no-port"}, "--backend (or $CHATFORGE_BACKEND): 'no-port'"),
        (["--share"], {}, "--share publishes the UI to anyone with the link; add a login"),
        (["--auth-file", "nowhere.yaml"], {}, "--auth-file nowhere.yaml does not exist"),
    ],
)
def test_bad_settings_are_named_without_a_traceback(args, env, message, monkeypatch):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = run_ui(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_taken_port_is_reported():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_ui("--port", str(port))
    assert result.returncode == 1
    assert f"error: cannot serve on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


# The UI image installs only the `ui` extra: none of these may be imported by the app.
ML_STACK = ["torch", "transformers", "accelerate", "peft", "datasets", "sentence_transformers",
            "faiss", "sklearn", "gguf", "safetensors"]  # fmt: skip

BUILD_WITHOUT_ML_STACK = f"""
import sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {ML_STACK!r}:
            raise ImportError("the UI imported " + name)

sys.meta_path.insert(0, Refuse())
from ui.app import build_app
build_app("127.0.0.1:50051")
print("built")
"""


def test_the_app_builds_without_the_ml_stack():
    result = subprocess.run(
        [sys.executable, "-c", BUILD_WITHOUT_ML_STACK], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("built")
