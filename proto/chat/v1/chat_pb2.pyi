from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GuardrailAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GUARDRAIL_ACTION_UNSPECIFIED: _ClassVar[GuardrailAction]
    ALLOW: _ClassVar[GuardrailAction]
    FLAG: _ClassVar[GuardrailAction]
    REDACT: _ClassVar[GuardrailAction]
    BLOCK: _ClassVar[GuardrailAction]

class FinishReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FINISH_REASON_UNSPECIFIED: _ClassVar[FinishReason]
    STOP: _ClassVar[FinishReason]
    LENGTH: _ClassVar[FinishReason]
    STOP_SEQUENCE: _ClassVar[FinishReason]
    BLOCKED: _ClassVar[FinishReason]
    CANCELLED: _ClassVar[FinishReason]
GUARDRAIL_ACTION_UNSPECIFIED: GuardrailAction
ALLOW: GuardrailAction
FLAG: GuardrailAction
REDACT: GuardrailAction
BLOCK: GuardrailAction
FINISH_REASON_UNSPECIFIED: FinishReason
STOP: FinishReason
LENGTH: FinishReason
STOP_SEQUENCE: FinishReason
BLOCKED: FinishReason
CANCELLED: FinishReason

class Message(_message.Message):
    __slots__ = ("role", "content")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    role: str
    content: str
    def __init__(self, role: _Optional[str] = ..., content: _Optional[str] = ...) -> None: ...

class SamplingParams(_message.Message):
    __slots__ = ("temperature", "top_k", "top_p", "max_tokens", "stop", "seed", "repetition_penalty", "fit_max_tokens")
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    REPETITION_PENALTY_FIELD_NUMBER: _ClassVar[int]
    FIT_MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    temperature: float
    top_k: int
    top_p: float
    max_tokens: int
    stop: _containers.RepeatedScalarFieldContainer[str]
    seed: int
    repetition_penalty: float
    fit_max_tokens: bool
    def __init__(self, temperature: _Optional[float] = ..., top_k: _Optional[int] = ..., top_p: _Optional[float] = ..., max_tokens: _Optional[int] = ..., stop: _Optional[_Iterable[str]] = ..., seed: _Optional[int] = ..., repetition_penalty: _Optional[float] = ..., fit_max_tokens: _Optional[bool] = ...) -> None: ...

class RagOptions(_message.Message):
    __slots__ = ("enabled", "collection", "k", "dense_weight", "lexical_weight")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    DENSE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    collection: str
    k: int
    dense_weight: float
    lexical_weight: float
    def __init__(self, enabled: _Optional[bool] = ..., collection: _Optional[str] = ..., k: _Optional[int] = ..., dense_weight: _Optional[float] = ..., lexical_weight: _Optional[float] = ...) -> None: ...

class ChatRequest(_message.Message):
    __slots__ = ("model", "messages", "sampling", "rag", "request_id")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    RAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    model: str
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    sampling: SamplingParams
    rag: RagOptions
    request_id: str
    def __init__(self, model: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., sampling: _Optional[_Union[SamplingParams, _Mapping]] = ..., rag: _Optional[_Union[RagOptions, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ChatEvent(_message.Message):
    __slots__ = ("started", "delta", "citations", "guardrail", "finished")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    GUARDRAIL_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    started: Started
    delta: Delta
    citations: Citations
    guardrail: GuardrailEvent
    finished: Finished
    def __init__(self, started: _Optional[_Union[Started, _Mapping]] = ..., delta: _Optional[_Union[Delta, _Mapping]] = ..., citations: _Optional[_Union[Citations, _Mapping]] = ..., guardrail: _Optional[_Union[GuardrailEvent, _Mapping]] = ..., finished: _Optional[_Union[Finished, _Mapping]] = ...) -> None: ...

class Started(_message.Message):
    __slots__ = ("request_id", "model", "prompt_tokens")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    model: str
    prompt_tokens: int
    def __init__(self, request_id: _Optional[str] = ..., model: _Optional[str] = ..., prompt_tokens: _Optional[int] = ...) -> None: ...

class Delta(_message.Message):
    __slots__ = ("text", "token_count")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    text: str
    token_count: int
    def __init__(self, text: _Optional[str] = ..., token_count: _Optional[int] = ...) -> None: ...

class Citation(_message.Message):
    __slots__ = ("index", "source_path", "title", "anchor", "snippet", "score", "url")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PATH_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_FIELD_NUMBER: _ClassVar[int]
    SNIPPET_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    index: int
    source_path: str
    title: str
    anchor: str
    snippet: str
    score: float
    url: str
    def __init__(self, index: _Optional[int] = ..., source_path: _Optional[str] = ..., title: _Optional[str] = ..., anchor: _Optional[str] = ..., snippet: _Optional[str] = ..., score: _Optional[float] = ..., url: _Optional[str] = ...) -> None: ...

class Citations(_message.Message):
    __slots__ = ("citations",)
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    citations: _containers.RepeatedCompositeFieldContainer[Citation]
    def __init__(self, citations: _Optional[_Iterable[_Union[Citation, _Mapping]]] = ...) -> None: ...

class GuardrailEvent(_message.Message):
    __slots__ = ("action", "category", "reason", "stage", "score", "source")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    action: GuardrailAction
    category: str
    reason: str
    stage: str
    score: float
    source: str
    def __init__(self, action: _Optional[_Union[GuardrailAction, str]] = ..., category: _Optional[str] = ..., reason: _Optional[str] = ..., stage: _Optional[str] = ..., score: _Optional[float] = ..., source: _Optional[str] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "time_to_first_token_ms", "tokens_per_second", "cached")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token_ms: float
    tokens_per_second: float
    cached: bool
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., time_to_first_token_ms: _Optional[float] = ..., tokens_per_second: _Optional[float] = ..., cached: _Optional[bool] = ...) -> None: ...

class Finished(_message.Message):
    __slots__ = ("finish_reason", "usage")
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    finish_reason: FinishReason
    usage: Usage
    def __init__(self, finish_reason: _Optional[_Union[FinishReason, str]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "default_model")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelCard]
    default_model: str
    def __init__(self, models: _Optional[_Iterable[_Union[ModelCard, _Mapping]]] = ..., default_model: _Optional[str] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class TrainingMetric(_message.Message):
    __slots__ = ("step", "epoch", "tokens_seen", "train_loss", "val_loss", "lr", "tokens_per_second", "flops")
    STEP_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    TOKENS_SEEN_FIELD_NUMBER: _ClassVar[int]
    TRAIN_LOSS_FIELD_NUMBER: _ClassVar[int]
    VAL_LOSS_FIELD_NUMBER: _ClassVar[int]
    LR_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    FLOPS_FIELD_NUMBER: _ClassVar[int]
    step: int
    epoch: float
    tokens_seen: int
    train_loss: float
    val_loss: float
    lr: float
    tokens_per_second: float
    flops: float
    def __init__(self, step: _Optional[int] = ..., epoch: _Optional[float] = ..., tokens_seen: _Optional[int] = ..., train_loss: _Optional[float] = ..., val_loss: _Optional[float] = ..., lr: _Optional[float] = ..., tokens_per_second: _Optional[float] = ..., flops: _Optional[float] = ...) -> None: ...

class ModelCard(_message.Message):
    __slots__ = ("name", "architecture", "parameters", "quantization", "dtype", "device", "source", "is_default", "context_length", "vocab_size", "adapter", "base_model", "run_json", "metrics", "default_sampling", "default_sampling_note", "lineage", "eval_summaries", "engine", "weight_format")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATION_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    VOCAB_SIZE_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    RUN_JSON_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_SAMPLING_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_SAMPLING_NOTE_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    EVAL_SUMMARIES_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    name: str
    architecture: str
    parameters: int
    quantization: str
    dtype: str
    device: str
    source: str
    is_default: bool
    context_length: int
    vocab_size: int
    adapter: str
    base_model: str
    run_json: str
    metrics: _containers.RepeatedCompositeFieldContainer[TrainingMetric]
    default_sampling: SamplingParams
    default_sampling_note: str
    lineage: _containers.RepeatedCompositeFieldContainer[TrainingStage]
    eval_summaries: _containers.RepeatedCompositeFieldContainer[EvalSummary]
    engine: str
    weight_format: str
    def __init__(self, name: _Optional[str] = ..., architecture: _Optional[str] = ..., parameters: _Optional[int] = ..., quantization: _Optional[str] = ..., dtype: _Optional[str] = ..., device: _Optional[str] = ..., source: _Optional[str] = ..., is_default: _Optional[bool] = ..., context_length: _Optional[int] = ..., vocab_size: _Optional[int] = ..., adapter: _Optional[str] = ..., base_model: _Optional[str] = ..., run_json: _Optional[str] = ..., metrics: _Optional[_Iterable[_Union[TrainingMetric, _Mapping]]] = ..., default_sampling: _Optional[_Union[SamplingParams, _Mapping]] = ..., default_sampling_note: _Optional[str] = ..., lineage: _Optional[_Iterable[_Union[TrainingStage, _Mapping]]] = ..., eval_summaries: _Optional[_Iterable[_Union[EvalSummary, _Mapping]]] = ..., engine: _Optional[str] = ..., weight_format: _Optional[str] = ...) -> None: ...

class TrainingStage(_message.Message):
    __slots__ = ("name", "kind", "metrics", "run_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    RUN_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    metrics: _containers.RepeatedCompositeFieldContainer[TrainingMetric]
    run_json: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., metrics: _Optional[_Iterable[_Union[TrainingMetric, _Mapping]]] = ..., run_json: _Optional[str] = ...) -> None: ...

class RetrieveRequest(_message.Message):
    __slots__ = ("query", "collection", "k", "dense_weight", "lexical_weight")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    DENSE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    query: str
    collection: str
    k: int
    dense_weight: float
    lexical_weight: float
    def __init__(self, query: _Optional[str] = ..., collection: _Optional[str] = ..., k: _Optional[int] = ..., dense_weight: _Optional[float] = ..., lexical_weight: _Optional[float] = ...) -> None: ...

class Chunk(_message.Message):
    __slots__ = ("source_path", "title", "anchor", "text", "score")
    SOURCE_PATH_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    source_path: str
    title: str
    anchor: str
    text: str
    score: float
    def __init__(self, source_path: _Optional[str] = ..., title: _Optional[str] = ..., anchor: _Optional[str] = ..., text: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class RetrieveResponse(_message.Message):
    __slots__ = ("chunks",)
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    chunks: _containers.RepeatedCompositeFieldContainer[Chunk]
    def __init__(self, chunks: _Optional[_Iterable[_Union[Chunk, _Mapping]]] = ...) -> None: ...

class ListCollectionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Collection(_message.Message):
    __slots__ = ("name", "documents", "chunks", "embedding_model", "version", "is_default", "building", "detail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    BUILDING_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    documents: int
    chunks: int
    embedding_model: str
    version: str
    is_default: bool
    building: bool
    detail: str
    def __init__(self, name: _Optional[str] = ..., documents: _Optional[int] = ..., chunks: _Optional[int] = ..., embedding_model: _Optional[str] = ..., version: _Optional[str] = ..., is_default: _Optional[bool] = ..., building: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...

class ListCollectionsResponse(_message.Message):
    __slots__ = ("collections",)
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[Collection]
    def __init__(self, collections: _Optional[_Iterable[_Union[Collection, _Mapping]]] = ...) -> None: ...

class CheckTextRequest(_message.Message):
    __slots__ = ("text", "stage")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    text: str
    stage: str
    def __init__(self, text: _Optional[str] = ..., stage: _Optional[str] = ...) -> None: ...

class GuardrailVerdict(_message.Message):
    __slots__ = ("action", "category", "score", "reason", "redacted_text")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REDACTED_TEXT_FIELD_NUMBER: _ClassVar[int]
    action: GuardrailAction
    category: str
    score: float
    reason: str
    redacted_text: str
    def __init__(self, action: _Optional[_Union[GuardrailAction, str]] = ..., category: _Optional[str] = ..., score: _Optional[float] = ..., reason: _Optional[str] = ..., redacted_text: _Optional[str] = ...) -> None: ...

class ScoreRequest(_message.Message):
    __slots__ = ("model", "context", "messages", "continuations")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    CONTINUATIONS_FIELD_NUMBER: _ClassVar[int]
    model: str
    context: str
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    continuations: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model: _Optional[str] = ..., context: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., continuations: _Optional[_Iterable[str]] = ...) -> None: ...

class ContinuationScore(_message.Message):
    __slots__ = ("logprob", "tokens", "greedy")
    LOGPROB_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    GREEDY_FIELD_NUMBER: _ClassVar[int]
    logprob: float
    tokens: int
    greedy: bool
    def __init__(self, logprob: _Optional[float] = ..., tokens: _Optional[int] = ..., greedy: _Optional[bool] = ...) -> None: ...

class ScoreResponse(_message.Message):
    __slots__ = ("model", "context_tokens", "scores")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    model: str
    context_tokens: int
    scores: _containers.RepeatedCompositeFieldContainer[ContinuationScore]
    def __init__(self, model: _Optional[str] = ..., context_tokens: _Optional[int] = ..., scores: _Optional[_Iterable[_Union[ContinuationScore, _Mapping]]] = ...) -> None: ...

class RecordEvalRequest(_message.Message):
    __slots__ = ("model", "name", "results_json")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RESULTS_JSON_FIELD_NUMBER: _ClassVar[int]
    model: str
    name: str
    results_json: str
    def __init__(self, model: _Optional[str] = ..., name: _Optional[str] = ..., results_json: _Optional[str] = ...) -> None: ...

class RecordEvalResponse(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class ReloadModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadModelsResponse(_message.Message):
    __slots__ = ("added", "removed", "reloaded", "unchanged", "errors", "default_model")
    ADDED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    RELOADED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    added: _containers.RepeatedScalarFieldContainer[str]
    removed: _containers.RepeatedScalarFieldContainer[str]
    reloaded: _containers.RepeatedScalarFieldContainer[str]
    unchanged: _containers.RepeatedScalarFieldContainer[str]
    errors: _containers.RepeatedScalarFieldContainer[str]
    default_model: str
    def __init__(self, added: _Optional[_Iterable[str]] = ..., removed: _Optional[_Iterable[str]] = ..., reloaded: _Optional[_Iterable[str]] = ..., unchanged: _Optional[_Iterable[str]] = ..., errors: _Optional[_Iterable[str]] = ..., default_model: _Optional[str] = ...) -> None: ...

class EvalMetric(_message.Message):
    __slots__ = ("name", "description", "value", "ci_low", "ci_high", "n", "higher_is_better")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    HIGHER_IS_BETTER_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    higher_is_better: bool
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., value: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., n: _Optional[int] = ..., higher_is_better: _Optional[bool] = ...) -> None: ...

class EvalSummary(_message.Message):
    __slots__ = ("name", "suite", "suite_version", "model", "items", "errors", "started_at", "duration_s", "metrics", "header_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUITE_FIELD_NUMBER: _ClassVar[int]
    SUITE_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    HEADER_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    suite: str
    suite_version: str
    model: str
    items: int
    errors: int
    started_at: str
    duration_s: float
    metrics: _containers.RepeatedCompositeFieldContainer[EvalMetric]
    header_json: str
    def __init__(self, name: _Optional[str] = ..., suite: _Optional[str] = ..., suite_version: _Optional[str] = ..., model: _Optional[str] = ..., items: _Optional[int] = ..., errors: _Optional[int] = ..., started_at: _Optional[str] = ..., duration_s: _Optional[float] = ..., metrics: _Optional[_Iterable[_Union[EvalMetric, _Mapping]]] = ..., header_json: _Optional[str] = ...) -> None: ...

class RunEvalRequest(_message.Message):
    __slots__ = ("suite", "model", "size", "full")
    SUITE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    suite: str
    model: str
    size: int
    full: bool
    def __init__(self, suite: _Optional[str] = ..., model: _Optional[str] = ..., size: _Optional[int] = ..., full: _Optional[bool] = ...) -> None: ...

class EvalRunStarted(_message.Message):
    __slots__ = ("suite", "model", "total")
    SUITE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    suite: str
    model: str
    total: int
    def __init__(self, suite: _Optional[str] = ..., model: _Optional[str] = ..., total: _Optional[int] = ...) -> None: ...

class EvalItemDone(_message.Message):
    __slots__ = ("done", "total", "item_id", "error")
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    done: int
    total: int
    item_id: str
    error: str
    def __init__(self, done: _Optional[int] = ..., total: _Optional[int] = ..., item_id: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class EvalProgress(_message.Message):
    __slots__ = ("started", "item", "finished")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    started: EvalRunStarted
    item: EvalItemDone
    finished: EvalSummary
    def __init__(self, started: _Optional[_Union[EvalRunStarted, _Mapping]] = ..., item: _Optional[_Union[EvalItemDone, _Mapping]] = ..., finished: _Optional[_Union[EvalSummary, _Mapping]] = ...) -> None: ...

class GetEvalRowsRequest(_message.Message):
    __slots__ = ("model", "name", "page_size", "page_token")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    model: str
    name: str
    page_size: int
    page_token: str
    def __init__(self, model: _Optional[str] = ..., name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetEvalRowsResponse(_message.Message):
    __slots__ = ("rows_json", "total", "next_page_token")
    ROWS_JSON_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    rows_json: _containers.RepeatedScalarFieldContainer[str]
    total: int
    next_page_token: str
    def __init__(self, rows_json: _Optional[_Iterable[str]] = ..., total: _Optional[int] = ..., next_page_token: _Optional[str] = ...) -> None: ...
