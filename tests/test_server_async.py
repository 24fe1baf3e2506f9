"""The asyncio server under load and at its edges, on a real server process: 128 open
streams do not slow health or ListModels, a failing forward pass ends its stream with
INTERNAL naming the request, and bytes that are not a valid request get INVALID_ARGUMENT
naming the problem, for every RPC."""

from __future__ import annotations

import re
import statistics
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from backend.client import ChatClient, RetryPolicy
from backend.launcher import BackendProcess
from chat.v1 import chat_pb2, chat_pb2_grpc
from tests.helpers import finished_log_line, metric_value, wait_for
from tests.tiny_model import make_tokenizer, save_checkpoint, tiny_llama

SERVICE = chat_pb2.DESCRIPTOR.services_by_name["ChatService"]
OPEN_STREAMS = 128


def make_model_that_fails_on_a_word(folder) -> tuple[str, str]:
    """A tiny model whose embedding table ends before the tokenizer's last tokens, as when
    tokens are added to a tokenizer without resizing the model: a prompt holding one of
    them fails inside the forward pass (an index error in the embedding), every other
    prompt is served. Returns (a prompt that fails, one that does not)."""
    tokenizer = make_tokenizer()
    fine = "hello"

    def prompt_ids(text: str) -> list[int]:
        messages = [{"role": "user", "content": text}]
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return tokenizer(prompt, add_special_tokens=False)["input_ids"]

    vocab = max(prompt_ids(fine)) + 1
    word = tokenizer.decode([len(tokenizer) - 1])  # the last merge: beyond the table
    assert max(prompt_ids(word)) >= vocab, word
    model = tiny_llama(tokenizer, layers=1, context=512)
    model.resize_token_embeddings(vocab)
    save_checkpoint(folder, model, tokenizer)
    return word, fine


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir):
    """`wide` decodes up to 128 requests at once; `broken` fails on one word."""
    folder = tmp_path_factory.mktemp("async-server")
    failing, fine = make_model_that_fails_on_a_word(folder / "broken")
    registry = folder / "models.yaml"
    registry.write_text(
        f"models:\n"
        f"  wide:\n    checkpoint: {tiny_model_dir}\n    default: true\n"
        f"    max_batch_size: {OPEN_STREAMS}\n    max_queue: {2 * OPEN_STREAMS}\n"
        f"  broken:\n    checkpoint: {folder / 'broken'}\n"
    )
    extra = ["--cache-entries", "0"]
    with BackendProcess(registry, extra_args=extra, log_path=folder / "server.log") as process:
        process.failing_word, process.fine_word = failing, fine
        yield process


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def test_health_and_list_models_answer_within_100ms_with_128_streams_open(server):
    channels = [grpc.insecure_channel(server.target) for _ in range(4)]
    probe = grpc.insecure_channel(server.target)
    health = health_pb2_grpc.HealthStub(probe)
    chat = chat_pb2_grpc.ChatServiceStub(probe)
    check = health_pb2.HealthCheckRequest(service=SERVICE.full_name)
    request = chat_pb2.ChatRequest(
        messages=[chat_pb2.Message(role="user", content="Go on")],
        sampling=chat_pb2.SamplingParams(max_tokens=3000),
    )
    streams = []
    try:
        for i in range(OPEN_STREAMS):
            stub = chat_pb2_grpc.ChatServiceStub(channels[i % len(channels)])
            streams.append(stub.Chat(request, timeout=300))
        for stream in streams:  # every stream admitted: submitted to the engine
            assert next(stream).HasField("started")
        assert wait_for(lambda: metric_value(server, "chatforge_active_streams") == OPEN_STREAMS)
        health.Check(check, timeout=5)  # the probe's connection is set up before timing
        health_times = [timed(lambda: health.Check(check, timeout=5)) for _ in range(5)]
        list_times = [
            timed(lambda: chat.ListModels(chat_pb2.ListModelsRequest(), timeout=5))
            for _ in range(5)
        ]
        assert not any(s.done() for s in streams)  # still streaming while probed
    finally:
        for stream in streams:
            stream.cancel()
        for channel in [*channels, probe]:
            channel.close()
    print(f"health {health_times}, ListModels {list_times} (seconds)")
    assert statistics.median(health_times) < 0.1 and max(health_times) < 0.1, health_times
    assert statistics.median(list_times) < 0.1 and max(list_times) < 0.1, list_times
    # Every cancelled stream ends on the server too, its engine request with it.
    assert wait_for(lambda: metric_value(server, "chatforge_active_streams") == 0, 30)


def test_a_failing_forward_pass_ends_the_stream_with_internal_naming_the_request(server):
    labels = {"model": "broken", "method": "Chat"}
    before = metric_value(server, "chatforge_requests_total", code="INTERNAL", **labels)
    with ChatClient(server.target, retry=RetryPolicy(attempts=1)) as client:
        events = []
        with pytest.raises(grpc.RpcError) as info:
            stream = client.chat(server.failing_word, model="broken", request_id="req-broken-1")
            events.extend(stream)
        # The model still serves other prompts: one bad request does not stop the engine.
        served = list(client.chat(server.fine_word, model="broken", sampling={"max_tokens": 5}))
    assert [e.WhichOneof("event") for e in events] == ["started"]
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "request req-broken-1: the model failed" in info.value.details()
    assert "IndexError" in info.value.details()
    assert served[-1].HasField("finished")
    after = metric_value(server, "chatforge_requests_total", code="INTERNAL", **labels)
    assert after == before + 1
    assert metric_value(server, "chatforge_requests_total", code="CANCELLED", **labels) == 0
    line = finished_log_line(server, "req-broken-1")  # the message names it already: once
    assert (line["code"], line["level"]) == ("INTERNAL", "ERROR")
    assert line["error"].startswith("request req-broken-1: the model failed")
    assert info.value.details() == line["error"]


def test_a_failing_score_is_internal_too(server):
    with (
        ChatClient(server.target, retry=RetryPolicy(attempts=1)) as client,
        pytest.raises(grpc.RpcError) as info,
    ):
        client.score(["x"], context=server.failing_word, model="broken")
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "the model failed while scoring (IndexError" in info.value.details()


def _first_string_field(descriptor):
    return next((f for f in descriptor.fields if f.type == f.TYPE_STRING), None)


def malformed_bytes(method) -> tuple[bytes, str]:
    """Raw bytes a non-Python client might send to `method`, and what the error must say:
    invalid UTF-8 in its first string field, or (a request without strings) a truncated
    message."""
    field = _first_string_field(method.input_type)
    if field is None:
        return b"\x0a\x05ab", f"is not a valid {method.input_type.full_name} protobuf message"
    value = b"caf\xe9"  # Latin-1, not UTF-8
    return bytes([field.number << 3 | 2, len(value)]) + value, f"field `{field.name}`"


@pytest.mark.parametrize("method", list(SERVICE.methods), ids=lambda m: m.name)
def test_malformed_bytes_are_invalid_argument_for_every_rpc(server, method):
    payload, says = malformed_bytes(method)
    path = f"/{SERVICE.full_name}/{method.name}"
    before = metric_value(
        server, "chatforge_requests_total", method=method.name, code="INVALID_ARGUMENT"
    )
    with grpc.insecure_channel(server.target) as channel, pytest.raises(grpc.RpcError) as info:
        # No serializers: the bytes go on the wire exactly as written here.
        if method.server_streaming:
            list(channel.unary_stream(path)(payload, timeout=10))
        else:
            channel.unary_unary(path)(payload, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert says in info.value.details()
    after = metric_value(
        server, "chatforge_requests_total", method=method.name, code="INVALID_ARGUMENT"
    )
    assert after == before + 1
    # The server assigned a request id, named in the message and in its log line.
    request_id = re.search(r"\(request id ([0-9a-f]{32})\)$", info.value.details())[1]
    line = finished_log_line(server, request_id)
    assert (line["method"], line["code"]) == (method.name, "INVALID_ARGUMENT")
    assert info.value.details() == f"{line['error']} (request id {request_id})"
    log = server.log_path.read_text()
    assert "Traceback" not in log and "Exception deserializing" not in log


def test_malformed_bytes_deep_in_a_chat_request_name_the_field(server):
    good = chat_pb2.Message(role="user", content="fine").SerializeToString()
    bad = chat_pb2.Message(role="user", content="X").SerializeToString().replace(b"X", b"\xff")
    payload = b"".join(b"\x12" + bytes([len(m)]) + m for m in (good, bad))  # messages = 2
    with grpc.insecure_channel(server.target) as channel, pytest.raises(grpc.RpcError) as info:
        list(channel.unary_stream(f"/{SERVICE.full_name}/Chat")(payload, timeout=10))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    expected = (
        "the request is not a valid chat.v1.ChatRequest: field `messages[1].content` holds "
        "bytes that are not UTF-8; protobuf string fields must be UTF-8 text (send binary "
        "data encoded, e.g. as base64)"
    )
    assert re.fullmatch(re.escape(expected) + r" \(request id \w+\)", info.value.details())
