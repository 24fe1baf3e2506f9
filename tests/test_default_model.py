"""The real default model (SmolLM2-135M-Instruct) served by a real server process."""

import pytest

from backend.client import ChatClient
from backend.gguf_convert import converted_dir
from chat.v1 import chat_pb2
from tests.helpers import run_backend, text_of

pytestmark = pytest.mark.slow


def test_capital_of_france_is_paris(default_server):
    with ChatClient(default_server.target) as client:
        events = list(
            client.chat(
                "What is the capital of France?",
                sampling={"temperature": 0.0, "max_tokens": 30},
            )
        )
    text = text_of(events)
    assert "Paris" in text
    assert events[-1].finished.finish_reason == chat_pb2.STOP
    card = ChatClient(default_server.target).list_models().models[0]
    assert card.name == "smollm2-135m-instruct"
    assert card.architecture == "LlamaForCausalLM"
    assert 130e6 < card.parameters < 140e6


def test_prepare_default_is_idempotent(default_server):
    # The server converted the GGUF on its first start; a second run must reuse it.
    weights = converted_dir("builtin") / "model.safetensors"
    before = weights.stat().st_mtime_ns
    result = run_backend("prepare-default", timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == str(converted_dir("builtin"))
    assert weights.stat().st_mtime_ns == before
    leftovers = [p.name for p in weights.parent.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no half-written temporary folder beside it
