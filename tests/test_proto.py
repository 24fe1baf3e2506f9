import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location(
    "proto_generate", Path(__file__).resolve().parent.parent / "proto" / "generate.py"
)
generate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate)


def test_generated_code_is_current():
    assert generate.stale_files() == []


def test_stale_code_is_detected(tmp_path, monkeypatch):
    proto = tmp_path / "chat" / "v1"
    proto.mkdir(parents=True)
    source = generate.PROTO_ROOT / "chat" / "v1" / "chat.proto"
    proto.joinpath("chat.proto").write_text(
        source.read_text().replace("message Message {", "message Message {\n  int32 extra = 9;")
    )
    for name in ("chat_pb2.py", "chat_pb2.pyi", "chat_pb2_grpc.py"):
        proto.joinpath(name).write_bytes((generate.PROTO_ROOT / "chat" / "v1" / name).read_bytes())
    monkeypatch.setattr(generate, "PROTO_ROOT", tmp_path)
    assert "chat/v1/chat_pb2.py" in generate.stale_files()


def test_contract_field_names():
    from chat.v1 import chat_pb2

    fields = {f.name for f in chat_pb2.ChatRequest.DESCRIPTOR.fields}
    assert fields == {"model", "messages", "sampling", "rag", "request_id"}
    sampling = {f.name for f in chat_pb2.SamplingParams.DESCRIPTOR.fields}
    assert sampling == {
        "temperature", "top_k", "top_p", "max_tokens", "stop", "seed", "repetition_penalty",
        "fit_max_tokens",
    }  # fmt: skip
    events = {f.name for f in chat_pb2.ChatEvent.DESCRIPTOR.oneofs_by_name["event"].fields}
    assert events == {"started", "delta", "citations", "guardrail", "finished"}
    chunk = {f.name for f in chat_pb2.Chunk.DESCRIPTOR.fields}
    assert chunk == {"source_path", "title", "anchor", "text", "score"}
    verdict = {f.name for f in chat_pb2.GuardrailVerdict.DESCRIPTOR.fields}
    assert {"action", "category", "score", "reason"} <= verdict
    assert set(chat_pb2.FinishReason.keys()) >= {
        "STOP", "LENGTH", "STOP_SEQUENCE", "BLOCKED", "CANCELLED",
    }  # fmt: skip
    with pytest.raises(ValueError):
        chat_pb2.GuardrailAction.Value("MAYBE")
