"""Quantized serving: each CPU quantization path loads and generates, the CUDA-only ones
refuse clearly, and the quantize table's measurements behave."""

from __future__ import annotations

import pytest
import torch

from backend.model_loader import load_models
from backend.registry import load_registry
from backend.sampling import SamplingConfig
from training.quantize import VariantRow, repeated_trigrams, tensor_bytes, verdict


def _registry(tmp_path, tiny_model_dir, quantization: str):
    path = tmp_path / "models.yaml"
    path.write_text(
        f"models:\n  q:\n    checkpoint: {tiny_model_dir}\n    quantization: {quantization}\n"
        f"    device: cpu\n"
    )
    return load_registry(path)


@pytest.mark.parametrize("quantization", ["int8", "int8-dynamic"])
def test_cpu_quantization_loads_and_generates(quantization, tmp_path, tiny_model_dir):
    (loaded,) = load_models(_registry(tmp_path, tiny_model_dir, quantization).models)
    (plain,) = load_models(_registry(tmp_path, tiny_model_dir, "none").models)
    try:
        prompt = loaded.codec.tokenizer("What is the capital of France?")["input_ids"]
        ids = loaded.engine.generate(prompt, SamplingConfig(temperature=0.0, max_tokens=12))
        assert len(ids) == 12
        assert tensor_bytes(loaded.model) < 0.6 * tensor_bytes(plain.model)
        # the weights really changed representation
        linear = loaded.model.model.layers[0].self_attn.q_proj
        assert type(linear) is not torch.nn.Linear or type(linear.weight) is not torch.nn.Parameter
    finally:
        loaded.engine.stop()
        plain.engine.stop()


@pytest.mark.parametrize("quantization", ["bnb-int8", "nf4"])
def test_bitsandbytes_quantization_on_cpu_says_what_it_needs(
    quantization, tmp_path, tiny_model_dir
):
    with pytest.raises(
        ValueError, match=f"quantization `{quantization}` runs through bitsandbytes on a CUDA GPU"
    ):
        list(load_models(_registry(tmp_path, tiny_model_dir, quantization).models))


def test_repeated_trigrams_spot_loops():
    assert repeated_trigrams(["the list is a sequence of items"]) == 0.0
    looped = ["it is it is it is it is it is"]
    assert repeated_trigrams(looped) > 0.6


def test_verdict_flags_drift_quality_and_perplexity():
    base = VariantRow("none", 500, 500, 20, 1.0, 0.30, 0.25, 1.0, 0.0)
    fine = VariantRow("int8", 150, 150, 25, 1.01, 0.29, 0.25, 0.8, 0.0)
    drift = VariantRow("int8-dynamic", 150, 150, 30, 1.02, 0.28, 0.24, 0.3, 0.2)
    worse = VariantRow("nf4", 90, 90, 20, 1.2, 0.1, 0.1, 0.6, 0.0)
    assert verdict(fine, base) == "ok"
    assert verdict(drift, base).startswith("DEGRADED: answers drift (agreement 0.30)")
    assert "docs-QA F1" in verdict(worse, base) and "bits/byte" in verdict(worse, base)
