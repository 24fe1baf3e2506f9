"""Targets: what a suite measures, a live server or a checkpoint folder on disk.

Design decisions:
- Both kinds answer the same two questions a suite asks: `chat` (a greedy answer to
  messages) and `score` (log-likelihoods of continuations after a raw-text or chat context).
  Suites that test the serving path itself (smoke, latency, retrieval, guardrails) use the
  live target's `client` and say so when given a checkpoint.
- Generation is greedy unless a suite passes `sampling` (the `--sampling` flag): fields of
  the proto's SamplingParams, or `{}` for the model's own defaults on the server, which is
  how a model's default sampling is measured before it goes into models.yaml. A checkpoint
  hands them to transformers' `generate` (a seed seeds torch first).
- A live target speaks only the proto through `backend.client.ChatClient` (the boundary
  between server and clients); requests run `concurrency` at a time.
- A checkpoint target loads the folder with transformers as it is (the checkpoint
  contract, DESIGN §4), so it needs no server and no registry: a training or fine-tuning
  run can score its own output from Python. A PEFT `adapter/` folder (adapter_config.json)
  loads through peft onto the base it names; `quantization` loads the weights through the
  server's own `backend.model_loader.load_weights`, so a quantized variant is measured
  exactly as it would be served. It scores with `backend.logprobs` and writes
  with `backend.model_card.record_eval`, the same pure functions the server runs, so a
  model scores the same served or on disk (neither touches the server or its state).
- Where results land: a checkpoint target writes `evals/NAME` into its own folder; a live
  target asks the server to (`RecordEval`), because the server owns the checkpoint folder
  and is where `GetModel` reads it back; a UI on another host reads runs only over gRPC.
  A model the server loaded from a hub id has no folder, and the run is kept locally only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import grpc

from backend.client import ChatClient
from backend.settings import ClientSettings
from evals.errors import EvalError


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    # Client-side arrival times (seconds since the request was sent) of each text delta,
    # and the tokens each carried: the latency suite's raw material.
    arrivals: list[float] = field(default_factory=list)
    delta_tokens: list[int] = field(default_factory=list)
    ended: float = 0.0  # when the stream closed


@dataclass(frozen=True)
class Scored:
    logprob: float  # nats, summed over the continuation's tokens
    tokens: int
    greedy: bool


class Target(Protocol):
    kind: str  # "live" or "checkpoint"
    model: str  # the model's name (server name, or the folder's name)
    concurrency: int

    def describe(self) -> dict: ...
    def chat(
        self, messages: list[dict[str, str]], max_tokens: int, sampling: dict | None = None
    ) -> Completion: ...
    def score(
        self,
        continuations: Sequence[str],
        context: str = "",
        messages: list[dict[str, str]] | None = None,
    ) -> list[Scored]: ...
    def record(self, name: str, results_json: str) -> str:
        """Store a results file in the model's evals/; EvalError says why it could not."""

    def close(self) -> None: ...


def rpc_message(error: grpc.RpcError) -> str:
    return f"{error.code().name}: {error.details()}"


class LiveTarget:
    kind = "live"

    def __init__(
        self,
        address: str,
        model: str = "",
        concurrency: int = 1,
        timeout=300.0,
        settings: ClientSettings | None = None,
    ):
        if concurrency < 1:
            raise EvalError(f"--concurrency must be at least 1, not {concurrency}")
        self.address = address
        self.concurrency = concurrency
        self.client = ChatClient(address, timeout=timeout, settings=settings)
        if not self.client.wait_until_serving(timeout=30):
            self.client.close()
            raise EvalError(
                f"no chatforge server is serving at {address}; start one with "
                "`python -m backend serve` or pass --target HOST:PORT"
            )
        try:
            card = self.client.get_model(model)
        except grpc.RpcError as error:
            self.client.close()
            raise EvalError(f"--model {model!r}: {rpc_message(error)}") from None
        self.model = card.name
        self.card = card

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "address": self.address,
            "architecture": self.card.architecture,
            "parameters": self.card.parameters,
            "source": self.card.source,
        }

    def chat(self, messages, max_tokens: int, sampling: dict | None = None) -> Completion:
        """Greedy by default; `sampling` (SamplingParams fields) replaces that, and `{}`
        leaves every field but max_tokens to the model's defaults on the server."""
        sampling = {**({"temperature": 0.0} if sampling is None else sampling)}
        sampling["max_tokens"] = max_tokens
        completion = Completion(text="")
        parts = []
        sent = time.perf_counter()
        for event in self.client.chat(messages, model=self.model, sampling=sampling):
            kind = event.WhichOneof("event")
            if kind == "started":  # a retried call starts again
                parts.clear()
                completion.arrivals.clear()
                completion.delta_tokens.clear()
            elif kind == "delta":
                completion.arrivals.append(time.perf_counter() - sent)
                completion.delta_tokens.append(event.delta.token_count)
                parts.append(event.delta.text)
            elif kind == "finished":
                usage = event.finished.usage
                completion.prompt_tokens = usage.prompt_tokens
                completion.completion_tokens = usage.completion_tokens
                completion.finish_reason = _finish_name(event.finished.finish_reason)
        completion.ended = time.perf_counter() - sent
        completion.text = "".join(parts)
        return completion

    def score(self, continuations, context="", messages=None) -> list[Scored]:
        response = self.client.score(
            continuations, context=context, messages=messages, model=self.model
        )
        return [Scored(s.logprob, s.tokens, s.greedy) for s in response.scores]

    def record(self, name: str, results_json: str) -> str:
        try:
            return self.client.record_eval(name, results_json, model=self.model)
        except grpc.RpcError as error:
            raise EvalError(f"the server did not store the results: {rpc_message(error)}") from None

    def close(self) -> None:
        self.client.close()


def _finish_name(reason: int) -> str:
    from chat.v1 import chat_pb2

    return chat_pb2.FinishReason.Name(reason)


def generate_options(sampling: dict | None) -> dict:
    """SamplingParams fields as transformers' `generate` arguments; a seed seeds torch
    here (generate has no seed of its own), so a sampled run repeats."""
    import torch

    sampling = dict(sampling or {})
    unknown = set(sampling) - {"temperature", "top_k", "top_p", "seed", "repetition_penalty"}
    if unknown:
        raise EvalError(f"sampling: {', '.join(sorted(unknown))} is not a sampling field")
    temperature = sampling.pop("temperature", 0.0)
    if "seed" in sampling:
        torch.manual_seed(sampling.pop("seed"))
    if temperature == 0.0:
        return {"do_sample": False, **sampling}
    return {"do_sample": True, "temperature": temperature, **sampling}


class CheckpointTarget:
    kind = "checkpoint"
    concurrency = 1  # one model in this process: items run one after another

    def __init__(
        self, folder: Path | str, model: str = "", device: str = "auto", quantization: str = "none"
    ) -> None:
        """`quantization` (none, int8, int8-dynamic, bnb-int8, nf4) loads the weights the way
        the server does for that registry setting; ValueError when it cannot run here."""
        import torch
        from transformers import AutoTokenizer, GenerationConfig

        from backend.model_loader import load_weights
        from backend.registry import ModelSpec

        self.folder = Path(folder).expanduser().resolve()
        if not (self.folder / "config.json").is_file() and not self._is_adapter():
            raise EvalError(
                f"{self.folder} is not a checkpoint folder (no config.json or "
                "adapter_config.json); give a folder written by training or save_pretrained"
            )
        self.model = model or self.folder.name
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        if self._is_adapter():
            from peft import AutoPeftModelForCausalLM

            if quantization != "none":
                raise ValueError("quantize the merged model, not an adapter folder")
            self.lm = AutoPeftModelForCausalLM.from_pretrained(self.folder, dtype=dtype)
            self.lm = self.lm.to(self.device)
            base = self.lm.peft_config["default"].base_model_name_or_path
            tokenizer_dir = self.folder if (self.folder / "tokenizer.json").is_file() else base
        else:
            spec = ModelSpec(
                name=self.model, checkpoint=str(self.folder), quantization=quantization
            )
            self.lm = load_weights(spec, str(self.folder), self.device, dtype)  # on its device
            tokenizer_dir = self.folder
        self.lm.eval()
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        eos = {self.tokenizer.eos_token_id} - {None}
        try:
            configured = GenerationConfig.from_pretrained(self.folder).eos_token_id
        except OSError:
            configured = None
        eos.update([configured] if isinstance(configured, int) else configured or [])
        self.eos_ids = sorted(eos)
        self.context_length = getattr(self.lm.config, "max_position_embeddings", 2048)

    def _is_adapter(self) -> bool:
        return (self.folder / "adapter_config.json").is_file()

    def describe(self) -> dict:
        config = self.lm.config
        return {
            "kind": self.kind,
            "path": str(self.folder),
            "architecture": (config.architectures or [type(self.lm).__name__])[0],
            "parameters": sum(p.numel() for p in self.lm.parameters()),
        }

    def _chat_ids(self, messages) -> list[int]:
        if not self.tokenizer.chat_template:
            raise EvalError(f"{self.folder}: the tokenizer has no chat template")
        text = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def chat(self, messages, max_tokens: int, sampling: dict | None = None) -> Completion:
        import torch

        options = generate_options(sampling)
        prompt = self._chat_ids(messages)
        max_tokens = min(max_tokens, self.context_length - len(prompt))
        with torch.inference_mode():
            out = self.lm.generate(
                input_ids=torch.tensor([prompt], device=self.device),
                attention_mask=torch.ones(1, len(prompt), dtype=torch.long, device=self.device),
                max_new_tokens=max_tokens,
                **options,
                eos_token_id=self.eos_ids,
                pad_token_id=self.tokenizer.pad_token_id or self.eos_ids[0],
            )[0, len(prompt) :].tolist()
        stopped = bool(out) and out[-1] in self.eos_ids
        new = out[:-1] if stopped else out
        return Completion(
            text=self.tokenizer.decode(new, skip_special_tokens=True),
            prompt_tokens=len(prompt),
            completion_tokens=len(new),
            finish_reason="STOP" if stopped else "LENGTH",
        )

    def score(self, continuations, context="", messages=None) -> list[Scored]:
        from backend.logprobs import continuation_logprobs, start_token_id

        if messages:
            context_ids = self._chat_ids(messages)
        else:
            start = start_token_id(self.tokenizer)
            if start is None:
                raise EvalError(f"{self.folder}: the tokenizer has no BOS or EOS token")
            context_ids = [start, *self.tokenizer(context, add_special_tokens=False)["input_ids"]]
        ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in continuations]
        scores = continuation_logprobs(self.lm, context_ids, ids)
        return [Scored(s.logprob, s.tokens, s.greedy) for s in scores]

    def record(self, name: str, results_json: str) -> str:
        from backend.model_card import record_eval  # the one writer of a model's evals/

        return str(record_eval(self.folder, name, results_json))

    def close(self) -> None:
        pass


HELDOUT_FILE = "heldout.jsonl"


class GuardFoldersTarget:
    """The guard's leave-one-family-out folder (`python -m training guard-lofo`): one
    classifier artifact per held-out family or language, each judged by the server's guard
    code in process with the default policy. Only the guardrails suite measures it."""

    kind = "guard-folders"
    concurrency = 1

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self.names = sorted(p.parent.name for p in self.folder.glob(f"*/{HELDOUT_FILE}"))
        if not self.names:
            raise EvalError(
                f"{self.folder}: no held-out sets (*/{HELDOUT_FILE}); build them with "
                "`python -m training guard-lofo`"
            )
        self.model = f"guard-lofo:{self.folder.name}"
        self._guards: dict = {}

    def guard(self, name: str):
        from backend.guardrails import Guard, load_policy
        from backend.guardrails.classifier import load_classifier

        if name not in self._guards:
            self._guards[name] = Guard(load_policy(), load_classifier(self.folder / name))
        return self._guards[name]

    def describe(self) -> dict:
        return {"kind": self.kind, "folder": str(self.folder), "held_out": self.names}

    def chat(self, messages, max_tokens: int) -> Completion:
        raise EvalError("a guard folder has no model; only the `guardrails` suite runs on it")

    def score(self, continuations, context="", messages=None) -> list[Scored]:
        raise EvalError("a guard folder has no model; only the `guardrails` suite runs on it")

    def record(self, name: str, results_json: str) -> str:
        return ""  # results stay in the run folder

    def close(self) -> None:
        self._guards.clear()


def open_target(
    target: str,
    model: str = "",
    concurrency: int = 1,
    timeout: float = 300.0,
    settings: ClientSettings | None = None,
) -> Target:
    """`host:port` or `unix:PATH` is a live server (reached with `settings`: API key,
    TLS); an existing folder is a checkpoint, or the guard's leave-one-family-out folder
    when it holds `lofo.json`."""
    path = Path(target).expanduser()
    if (path / "lofo.json").is_file():
        return GuardFoldersTarget(path)
    if path.is_dir():
        if concurrency != 1:
            raise EvalError(
                "--concurrency applies to a live server; a checkpoint runs one at a time"
            )
        return CheckpointTarget(path, model=model)
    if target.startswith("unix:"):  # a Unix socket (how the server's RunEval reaches itself)
        return LiveTarget(target, model, concurrency, timeout, settings)
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise EvalError(
            f"--target {target!r}: give a server as HOST:PORT (e.g. 127.0.0.1:50051) or an "
            "existing checkpoint folder"
        )
    return LiveTarget(target, model, concurrency, timeout, settings)


def checkpoint_folder(model: str) -> Path:
    """`--model`: a checkpoint folder, or a name of the server's registry (models.yaml) whose
    checkpoint is on disk; read through the backend's own registry, as the server reads it."""
    from backend.gguf_convert import converted_dir
    from backend.registry import DEFAULT_CONFIG, RegistryError, load_registry

    folder = Path(model).expanduser()
    if folder.is_dir():
        return folder
    try:
        spec = load_registry(DEFAULT_CONFIG).models.get(model)
    except RegistryError as exc:
        raise EvalError(f"--model {model}: {exc}") from None
    if spec is None:
        raise EvalError(
            f"--model {model}: no such folder, and no model of that name in models.yaml"
        )
    if spec.checkpoint and Path(spec.checkpoint).is_dir():
        return Path(spec.checkpoint)
    if spec.gguf and converted_dir(spec.gguf).is_dir():
        return converted_dir(spec.gguf)
    raise EvalError(
        f"--model {model}: quantize works on a local checkpoint folder; convert the model "
        "first (`python -m backend prepare-default` for the default model) or give its folder"
    )
