"""The server's JSON log of a call: one line when it ends, with the request id and the
trace id the client sent, on every line of the request and in its error message."""

from __future__ import annotations

import secrets

import grpc
import pytest

from chat.v1 import chat_pb2, chat_pb2_grpc
from tests.helpers import finished_log_line, log_lines


@pytest.fixture
def stub(tiny_server):
    with grpc.insecure_channel(tiny_server.target) as channel:
        yield chat_pb2_grpc.ChatServiceStub(channel)


def test_the_log_names_the_request_and_trace_ids_the_client_sent(tiny_server, stub):
    trace_id = secrets.token_hex(16)
    request_id = f"test-{secrets.token_hex(4)}"
    metadata = [("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01"),
                ("x-request-id", request_id)]  # fmt: skip
    request = chat_pb2.ChatRequest(
        messages=[chat_pb2.Message(role="user", content="Tell me about foxes")],
        sampling=chat_pb2.SamplingParams(max_tokens=5, temperature=0),
    )
    call = stub.Chat(request, metadata=metadata, timeout=60)
    events = list(call)
    assert dict(call.initial_metadata())["x-request-id"] == request_id
    assert events[0].started.request_id == request_id  # the metadata's id, used as is

    line = finished_log_line(tiny_server, request_id)
    assert (line["method"], line["code"], line["model"]) == ("Chat", "OK", "tiny")
    assert line["trace_id"] == trace_id and line["level"] == "INFO"
    assert line["prompt_tokens"] == events[0].started.prompt_tokens > 0
    assert line["completion_tokens"] == 5 and line["finish_reason"] == "LENGTH"
    assert line["ttft_ms"] > 0 and line["tokens_per_second"] > 0 and line["prefill_ms"] > 0
    assert line["queue_ms"] >= 0 and line["prefix_cached_tokens"] >= 0
    assert line["peer"].startswith(("ipv4:127.0.0.1", "ipv6:")) and line["guardrails"] == []
    assert line["cache_hit"] is None  # this server runs without the response cache
    assert line["rag_collection"] is None and line["adapter"] is None
    assert "messages" not in line and "answer" not in line  # no content without --log-content
    for other in log_lines(tiny_server):
        if other.get("request_id") == request_id:
            assert other["trace_id"] == trace_id


def test_a_refused_call_names_its_request_id_in_the_error_and_the_log(tiny_server, stub):
    request = chat_pb2.ChatRequest(
        model="no-such-model",
        messages=[chat_pb2.Message(role="user", content="hi")],
        request_id="refused-1",
    )
    with pytest.raises(grpc.RpcError) as raised:
        list(stub.Chat(request, timeout=60))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert raised.value.details().endswith("(request id refused-1)")
    line = finished_log_line(tiny_server, "refused-1")
    assert line["code"] == "NOT_FOUND" and "unknown model 'no-such-model'" in line["error"]
    assert "trace_id" not in line  # the client sent no trace context
