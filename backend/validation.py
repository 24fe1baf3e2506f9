"""Request validation: every rule of the API in one place, each error naming the field.

Design decisions:
- Validation turns a proto request into plain, checked values (messages as dicts, a
  `SamplingConfig`) before anything touches a model, so a bad request changes nothing and
  the engine never sees an out-of-range parameter.
- Errors are `RequestError(status code, message)`; the message names the field, the value
  and the allowed range, so a client can fix the call without reading the server's code.
- Unset sampling fields (proto3 `optional`) take the model's defaults (models.yaml
  `sampling:`, else `SamplingConfig`'s); an explicit 0 temperature is greedy decoding, not
  "unset".
- An unset `max_tokens` means "as much as fits, up to the default": it is never an error,
  whatever the model's context; `fit_to_context` shrinks it to the room the prompt leaves.
  An explicit `max_tokens` that cannot fit is INVALID_ARGUMENT, saying how much would,
  unless the request sets `fit_max_tokens`, which makes it a ceiling treated the same way
  (the UI sets it: its slider then cannot produce a refused request, however long the
  conversation).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields

import grpc

from backend.sampling import SamplingConfig
from chat.v1 import chat_pb2

ROLES = ("system", "user", "assistant")
MAX_MESSAGES = 256
MAX_CONTENT_CHARS = 32_000
MAX_STOPS = 8
MAX_STOP_CHARS = 64
MAX_RAG_K = 20
MAX_RAG_WEIGHT = 10.0


class RequestError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> RequestError:
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, message)


@dataclass(frozen=True)
class ValidChat:
    messages: list[dict[str, str]]
    sampling: SamplingConfig
    max_tokens_given: bool  # an explicit max_tokens must fit; a default one shrinks to fit
    stop: list[str]


def validate_messages(messages) -> list[dict[str, str]]:
    if not messages:
        raise invalid("messages: at least one message is required")
    if len(messages) > MAX_MESSAGES:
        raise invalid(f"messages: at most {MAX_MESSAGES} messages, got {len(messages)}")
    out = []
    for i, message in enumerate(messages):
        if message.role not in ROLES:
            raise invalid(
                f"messages[{i}].role: unknown role {message.role!r}; use one of {', '.join(ROLES)}"
            )
        if not message.content.strip():
            raise invalid(f"messages[{i}].content: must not be empty")
        if len(message.content) > MAX_CONTENT_CHARS:
            raise invalid(
                f"messages[{i}].content: {len(message.content)} characters, "
                f"the limit is {MAX_CONTENT_CHARS}"
            )
        out.append({"role": message.role, "content": message.content})
    if out[-1]["role"] != "user":
        raise invalid(f"messages[{len(out) - 1}].role: the last message must be from the user")
    return out


def validate_sampling(
    params: chat_pb2.SamplingParams,
    context_length: int,
    model_defaults: SamplingConfig = SamplingConfig(),  # noqa: B008 (frozen, never mutated)
) -> SamplingConfig:
    defaults = {f.name: getattr(model_defaults, f.name) for f in fields(SamplingConfig)}
    given = {
        name: getattr(params, name)
        for name in defaults
        if params.HasField(name)  # proto3 optional: unset takes the default
    }
    config = SamplingConfig(**{**defaults, **given})
    if not 0.0 <= config.temperature <= 2.0:
        raise invalid(f"sampling.temperature: {config.temperature:g} is outside [0, 2]")
    if not 0.0 < config.top_p <= 1.0:
        raise invalid(f"sampling.top_p: {config.top_p:g} is outside (0, 1]")
    if config.top_k < 0:
        raise invalid(f"sampling.top_k: {config.top_k} must be >= 0 (0 disables top-k)")
    if config.max_tokens < 1:
        raise invalid(f"sampling.max_tokens: {config.max_tokens} must be >= 1")
    # An unset max_tokens is the default, which `fit_to_context` shrinks to the room the
    # prompt leaves: a default must fit any model, however short its context; so does a
    # ceiling (`fit_max_tokens`).
    if (
        params.HasField("max_tokens")
        and not params.fit_max_tokens
        and (config.max_tokens >= context_length)
    ):
        raise invalid(
            f"sampling.max_tokens: {config.max_tokens} is beyond the model's context of "
            f"{context_length} tokens; ask for fewer, or leave it unset for as much as fits"
        )
    if not 0.0 < config.repetition_penalty <= 2.0:
        raise invalid(
            f"sampling.repetition_penalty: {config.repetition_penalty:g} is outside (0, 2] "
            "(1 disables it)"
        )
    if config.seed is not None and config.seed < 0:
        raise invalid(f"sampling.seed: {config.seed} must be >= 0")
    return config


def validate_stop(stop) -> list[str]:
    if len(stop) > MAX_STOPS:
        raise invalid(f"sampling.stop: at most {MAX_STOPS} stop strings, got {len(stop)}")
    for i, s in enumerate(stop):
        if not s or len(s) > MAX_STOP_CHARS:
            raise invalid(f"sampling.stop[{i}]: must be 1 to {MAX_STOP_CHARS} characters")
    return list(stop)


@dataclass(frozen=True)
class RetrievalParams:
    collection: str  # "" means the server's default collection
    k: int
    dense_weight: float
    lexical_weight: float


def validate_retrieval(options, default_k: int, prefix: str = "") -> RetrievalParams:
    """`options` is a RagOptions or a RetrieveRequest: both carry collection, k and weights;
    `prefix` is how the fields are named in errors (`rag.` inside a ChatRequest)."""
    if not 0 <= options.k <= MAX_RAG_K:
        raise invalid(
            f"{prefix}k: {options.k} is outside [1, {MAX_RAG_K}] "
            f"(0 takes the server's default of {default_k})"
        )
    weights = {}
    for name in ("dense_weight", "lexical_weight"):
        value = getattr(options, name) if options.HasField(name) else 1.0
        if not 0.0 <= value <= MAX_RAG_WEIGHT:
            raise invalid(f"{prefix}{name}: {value:g} is outside [0, {MAX_RAG_WEIGHT:g}]")
        weights[name] = value
    if not any(weights.values()):
        raise invalid(
            f"{prefix}dense_weight and {prefix}lexical_weight: at least one must be above 0"
        )
    return RetrievalParams(options.collection, options.k or default_k, **weights)


def validate_text(text: str, field: str) -> str:
    """A non-blank text within the content limit (a query, a text to check)."""
    if not text.strip():
        raise invalid(f"{field}: must not be empty")
    if len(text) > MAX_CONTENT_CHARS:
        raise invalid(f"{field}: {len(text)} characters, the limit is {MAX_CONTENT_CHARS}")
    return text


def validate_chat(
    request: chat_pb2.ChatRequest,
    context_length: int,
    model_defaults: SamplingConfig = SamplingConfig(),  # noqa: B008 (frozen, never mutated)
) -> ValidChat:
    return ValidChat(
        messages=validate_messages(request.messages),
        sampling=validate_sampling(request.sampling, context_length, model_defaults),
        max_tokens_given=request.sampling.HasField("max_tokens")
        and not request.sampling.fit_max_tokens,
        stop=validate_stop(request.sampling.stop),
    )


def fit_to_context(chat: ValidChat, prompt_tokens: int, context_length: int) -> SamplingConfig:
    """Check the prompt against the context; return the sampling config that fits."""
    if prompt_tokens >= context_length:
        raise invalid(
            f"messages: the prompt is {prompt_tokens} tokens, which does not fit the model's "
            f"context of {context_length} tokens; shorten the conversation (nothing was "
            "truncated)"
        )
    room = context_length - prompt_tokens
    if chat.sampling.max_tokens <= room:
        return chat.sampling
    if chat.max_tokens_given:
        raise invalid(
            f"sampling.max_tokens: {chat.sampling.max_tokens} plus the {prompt_tokens}-token "
            f"prompt exceeds the model's context of {context_length}; ask for at most {room}"
        )
    return SamplingConfig(**{**chat.sampling.__dict__, "max_tokens": room})


# --- Evals: Score and RecordEval ----------------------------------------------------------

MAX_CONTINUATIONS = 32
MAX_EVAL_JSON_BYTES = 16 * 1024 * 1024
_EVAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,150}\.json")


@dataclass(frozen=True)
class ValidScore:
    context: str
    messages: list[dict[str, str]] | None  # a chat context, or None for raw text
    continuations: list[str]


def validate_score(request: chat_pb2.ScoreRequest) -> ValidScore:
    if request.messages and request.context:
        raise invalid("context: give `context` (raw text) or `messages` (a chat), not both")
    if len(request.context) > MAX_CONTENT_CHARS:
        raise invalid(
            f"context: {len(request.context)} characters, the limit is {MAX_CONTENT_CHARS}"
        )
    messages = None
    if request.messages:
        messages = validate_messages(request.messages)
    if not 1 <= len(request.continuations) <= MAX_CONTINUATIONS:
        raise invalid(
            f"continuations: give 1 to {MAX_CONTINUATIONS}, got {len(request.continuations)}"
        )
    for i, text in enumerate(request.continuations):
        if not text or len(text) > MAX_CONTENT_CHARS:
            raise invalid(f"continuations[{i}]: must be 1 to {MAX_CONTENT_CHARS} characters")
    return ValidScore(request.context, messages, list(request.continuations))


def validate_eval_name(name: str) -> None:
    """A file name of a model's evals/ folder: nothing that could reach outside it."""
    if not _EVAL_NAME.fullmatch(name) or ".." in name:
        raise invalid(
            f"name: {name!r} is not a plain file name; use letters, digits, '.', '_' "
            "and '-', ending in .json"
        )


def validate_eval_record(request: chat_pb2.RecordEvalRequest) -> None:
    """Check the file name and that the body is a JSON object."""
    validate_eval_name(request.name)
    size = len(request.results_json.encode())
    if size > MAX_EVAL_JSON_BYTES:
        raise invalid(f"results_json: {size} bytes, the limit is {MAX_EVAL_JSON_BYTES}")
    try:
        data = json.loads(request.results_json)
    except ValueError as exc:
        raise invalid(f"results_json: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise invalid("results_json: must be a JSON object (an evals results file)")
