"""The OpenVINO engine on an fp32 export of a tiny random Llama: streaming, greedy agreement
with transformers, seeds, finish reasons, cancellation, back-pressure, stop and failure."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from backend.client import ChatClient
from backend.engine import (
    EngineConfig,
    EngineError,
    EngineStoppedError,
    FinishReason,
    QueueFullError,
)
from backend.launcher import BackendProcess
from backend.openvino_engine import OpenVinoEngine, kv_bytes_per_token, open_pipeline
from backend.openvino_export import ExportError, export_openvino, is_exported
from backend.sampling import SamplingConfig
from tests.conftest import NO_CACHE
from tests.helpers import finished_of
from tests.tiny_model import make_tiny_model

pytest.importorskip("openvino_genai")
PROMPT = [1, 50, 60, 70, 80, 90]
GREEDY = SamplingConfig(temperature=0.0, max_tokens=8)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("ov-tiny") / "model")


@pytest.fixture(scope="module")
def export(tiny_dir, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHATFORGE_HOME", str(tmp_path_factory.mktemp("home")))
        yield export_openvino(tiny_dir, "fp32")


def make_engine(export, **settings) -> OpenVinoEngine:
    config = EngineConfig(**{"max_batch_size": 8, "max_batch_tokens": 256, **settings})
    return OpenVinoEngine(open_pipeline(export, config, 1024), [2], 4096, config)


@pytest.fixture(scope="module")
def engine(export):
    engine = make_engine(export)
    yield engine
    engine.stop()


def test_export_is_cached_and_complete(tiny_dir, export):
    assert is_exported(export)
    assert export_openvino(tiny_dir, "fp32") == export  # a second call reuses it
    assert not list(export.parent.glob(".*-*/"))  # no temporary folder left


def test_greedy_matches_transformers(tiny_dir, engine):
    model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32)
    expected = model.generate(
        torch.tensor([PROMPT]), max_new_tokens=8, do_sample=False, eos_token_id=None
    )[0, len(PROMPT) :].tolist()
    generation = engine.submit(PROMPT, GREEDY)
    assert list(generation) == expected
    assert generation.finish_reason is FinishReason.LENGTH
    assert engine.running == 0 and engine.waiting == 0


def test_seed_repeats_sampled_tokens(engine):
    config = SamplingConfig(temperature=1.5, max_tokens=12, seed=7)
    first = list(engine.submit(PROMPT, config))
    assert list(engine.submit(PROMPT, config)) == first
    assert len(first) == 12


def test_eos_ends_with_stop(export):
    first = list(make_engine(export).submit(PROMPT, GREEDY))[2]
    config = EngineConfig(max_batch_size=8, max_batch_tokens=256)
    stopping = OpenVinoEngine(open_pipeline(export, config, 1024), [first], 4096, config)
    generation = stopping.submit(PROMPT, GREEDY)
    tokens = list(generation)
    stopping.stop()
    assert first not in tokens and len(tokens) < 8
    assert generation.finish_reason is FinishReason.STOP


def test_cancel_mid_batch_leaves_others_unchanged(engine):
    config = SamplingConfig(temperature=0.0, max_tokens=40)
    alone = list(engine.submit(PROMPT, config))
    cancelled = engine.submit(PROMPT, config)
    other = engine.submit(PROMPT, config)
    stream = iter(cancelled)
    next(stream)
    cancelled.cancel()
    assert len(list(stream)) < 39
    assert cancelled.finish_reason is FinishReason.CANCELLED
    assert list(other) == alone
    assert engine.running == 0


def test_queue_full_and_stop(export):
    engine = make_engine(export, max_batch_size=1, max_queue=1)
    config = SamplingConfig(temperature=0.0, max_tokens=200)
    with pytest.raises(QueueFullError):
        for _ in range(5):
            engine.submit(PROMPT, config)
    engine.stop()
    with pytest.raises(EngineStoppedError):
        engine.submit(PROMPT, config)


def test_failing_pipeline_ends_streams_with_engine_error(export):
    config = EngineConfig(max_batch_size=8, max_batch_tokens=256)
    pipeline = open_pipeline(export, config, 1024)

    class Failing:
        def __getattr__(self, name):
            return getattr(pipeline, name)

        def step(self):
            raise RuntimeError("device lost")

    engine = OpenVinoEngine(Failing(), [2], 4096, config)
    generation = engine.submit(PROMPT, GREEDY)
    with pytest.raises(EngineError, match="device lost"):
        list(generation)
    engine.stop()


def test_kv_estimate_matches_pipeline_usage(export, engine):
    usage = []
    probe = make_engine(export)
    probe.on_step = lambda stats: usage.append(stats.kv_usage)
    list(probe.submit([5] * 2000, SamplingConfig(temperature=0.0, max_tokens=1)))
    probe.stop()
    estimated = 2001 * kv_bytes_per_token(export) / 2**30
    assert max(usage) == pytest.approx(estimated, rel=0.1)


def test_broken_checkpoint_export_fails_with_reason(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(ExportError, match="last lines"):
        export_openvino(tmp_path, "fp32")
    assert not list((tmp_path.parent).glob(".*-*/"))


def serve_one(registry: Path, env: dict[str, str], log: Path) -> dict:
    with (
        BackendProcess(registry, extra_args=NO_CACHE, env=env, log_path=log) as server,
        ChatClient(server.target) as client,
    ):
        cards = {card.name: card for card in client.list_models().models}
        events = list(client.chat("Hello", sampling={"max_tokens": 6, "temperature": 0}))
    return {"cards": cards, "events": events, "log": log.read_text()}


def test_server_serves_openvino(tiny_dir, export, tmp_path):
    registry = tmp_path / "models.yaml"
    registry.write_text(
        f"models:\n  tiny-ov:\n    checkpoint: {tiny_dir}\n"
        f"    engine: openvino\n    weight_format: fp32\n"
    )
    env = {"CHATFORGE_HOME": str(export.parent.parent)}  # the module's export, reused
    served = serve_one(registry, env, tmp_path / "server.log")
    card = served["cards"]["tiny-ov"]
    assert (card.engine, card.weight_format) == ("openvino", "fp32")
    assert finished_of(served["events"]).usage.completion_tokens == 6
    assert "exporting" not in served["log"]


def test_failed_export_falls_back_to_native(tiny_dir, tmp_path):
    broken = tmp_path / "exporter"
    broken.write_text("#!/bin/sh\necho 'no exporter here: broken on purpose' >&2\nexit 3\n")
    broken.chmod(0o755)
    registry = tmp_path / "models.yaml"
    registry.write_text(f"models:\n  tiny-ov:\n    checkpoint: {tiny_dir}\n    engine: openvino\n")
    env = {"CHATFORGE_HOME": str(tmp_path / "home"), "CHATFORGE_EXPORT_PYTHON": str(broken)}
    served = serve_one(registry, env, tmp_path / "server.log")
    assert served["cards"]["tiny-ov"].engine == "native"
    assert finished_of(served["events"]).usage.completion_tokens == 6
    assert "OpenVINO export failed, serving natively" in served["log"]
    assert "broken on purpose" in served["log"]
