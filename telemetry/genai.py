"""OpenTelemetry GenAI semantic-convention attributes of one chat call.

Design decisions:
- One mapping from the chat proto to `gen_ai.*` attributes, used by the UI's client span
  and the server's RPC span, so both ends of a trace describe the call with the same keys.
- The key names come from the semantic-conventions package (its incubating GenAI
  attributes), not typed out here.
- Finish reasons are the proto's names in lower case (stop, length, stop_sequence,
  blocked, cancelled): the conventions leave the values to the provider.
"""

from __future__ import annotations

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai

from chat.v1 import chat_pb2

PROVIDER = "chatforge"
_SAMPLING = {
    "temperature": gen_ai.GEN_AI_REQUEST_TEMPERATURE,
    "top_p": gen_ai.GEN_AI_REQUEST_TOP_P,
    "top_k": gen_ai.GEN_AI_REQUEST_TOP_K,
    "max_tokens": gen_ai.GEN_AI_REQUEST_MAX_TOKENS,
    "seed": gen_ai.GEN_AI_REQUEST_SEED,
}


def request_attributes(request: chat_pb2.ChatRequest, model: str = "") -> dict[str, object]:
    """What was asked: operation, model (the server's resolved name when known), and the
    sampling parameters the caller set."""
    attributes: dict[str, object] = {
        gen_ai.GEN_AI_OPERATION_NAME: "chat",
        gen_ai.GEN_AI_PROVIDER_NAME: PROVIDER,
        gen_ai.GEN_AI_REQUEST_MODEL: model or request.model,
    }
    sampling = request.sampling
    for field, key in _SAMPLING.items():
        if sampling.HasField(field):  # only what the caller set: unset means the default
            attributes[key] = getattr(sampling, field)
    if sampling.stop:
        attributes[gen_ai.GEN_AI_REQUEST_STOP_SEQUENCES] = list(sampling.stop)
    return attributes


def finish_reason(reason: int) -> str:
    return chat_pb2.FinishReason.Name(reason).lower()


def response_attributes(
    request_id: str, model: str, finished: chat_pb2.Finished | None
) -> dict[str, object]:
    """What came back: the request id as the response id, the model, usage, finish reason."""
    attributes: dict[str, object] = {
        gen_ai.GEN_AI_RESPONSE_ID: request_id,
        gen_ai.GEN_AI_RESPONSE_MODEL: model,
    }
    if finished is not None:
        attributes[gen_ai.GEN_AI_USAGE_INPUT_TOKENS] = finished.usage.prompt_tokens
        attributes[gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS] = finished.usage.completion_tokens
        attributes[gen_ai.GEN_AI_RESPONSE_FINISH_REASONS] = [finish_reason(finished.finish_reason)]
    return attributes


def span_name(model: str) -> str:
    """`{operation} {model}`, as the conventions name a GenAI span."""
    return f"chat {model}".strip()
