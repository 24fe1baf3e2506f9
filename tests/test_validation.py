"""Every validation rule, against a real server: the status code, a message naming the
field and the allowed range, and no model work done for a rejected call."""

import grpc
import pytest

from backend.client import ChatClient, RetryPolicy
from chat.v1 import chat_pb2
from tests.helpers import metric_value

INVALID = grpc.StatusCode.INVALID_ARGUMENT
LONG_TEXT = "numbers " + " ".join(str(i) for i in range(6000))

CASES = [
    ([], {}, {}, INVALID, "messages: at least one message"),
    ([("user", "   ")], {}, {}, INVALID, "messages[0].content: must not be empty"),
    ([("robot", "hi")], {}, {}, INVALID, "messages[0].role: unknown role 'robot'"),
    ([("user", "hi"), ("assistant", "ok")], {}, {}, INVALID, "last message must be from"),
    ([("user", "x" * 40_000)], {}, {}, INVALID, "40000 characters, the limit is 32000"),
    ([("user", "hi")], {"temperature": 2.5}, {}, INVALID, "temperature: 2.5 is outside [0, 2]"),
    ([("user", "hi")], {"temperature": -0.1}, {}, INVALID, "sampling.temperature"),
    ([("user", "hi")], {"top_p": 0.0}, {}, INVALID, "sampling.top_p: 0 is outside (0, 1]"),
    ([("user", "hi")], {"top_p": 1.5}, {}, INVALID, "sampling.top_p: 1.5"),
    ([("user", "hi")], {"top_k": -1}, {}, INVALID, "sampling.top_k: -1 must be >= 0"),
    ([("user", "hi")], {"max_tokens": 0}, {}, INVALID, "sampling.max_tokens: 0 must be >= 1"),
    ([("user", "hi")], {"max_tokens": 100_000}, {}, INVALID, "beyond the model's context"),
    ([("user", "hi")], {"max_tokens": 4090}, {}, INVALID, "ask for at most"),
    ([("user", LONG_TEXT)], {}, {}, INVALID, "does not fit the model's context of 4096"),
    ([("user", "hi")], {"repetition_penalty": 0.0}, {}, INVALID, "repetition_penalty"),
    ([("user", "hi")], {"seed": -3}, {}, INVALID, "sampling.seed: -3 must be >= 0"),
    ([("user", "hi")], {"stop": ["a"] * 9}, {}, INVALID, "at most 8 stop strings"),
    ([("user", "hi")], {}, {"model": "nope"}, grpc.StatusCode.NOT_FOUND, "has: tiny, tiny-b"),
    (
        [("user", "hi")],
        {},
        {"rag": {"enabled": True}},
        grpc.StatusCode.NOT_FOUND,
        "no retrieval collection",
    ),
]


def generation_tokens(server) -> float:
    return metric_value(server, "chatforge_generation_tokens_total")


@pytest.mark.parametrize(("messages", "sampling", "extra", "code", "fragment"), CASES)
def test_bad_request_is_rejected_with_field_and_range(
    tiny_server, messages, sampling, extra, code, fragment
):
    before = generation_tokens(tiny_server)
    with ChatClient(tiny_server.target, retry=RetryPolicy(attempts=1)) as client:
        stream = client.chat(
            [{"role": r, "content": c} for r, c in messages],
            sampling=chat_pb2.SamplingParams(**sampling),
            **extra,
        )
        with pytest.raises(grpc.RpcError) as info:
            list(stream)
    assert info.value.code() == code
    assert fragment in info.value.details()
    assert generation_tokens(tiny_server) == before
