"""models.yaml: valid files load, broken ones stop start-up with file, line and problem."""

import pytest

from backend.registry import RegistryError, load_registry
from tests.helpers import run_backend


def write(tmp_path, text, name="models.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_relative_checkpoint_and_include(tmp_path):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "runs").mkdir()
    write(tmp_path, "models:\n  extra:\n    checkpoint: ../ckpt\n", "runs/models.yaml")
    path = write(
        tmp_path,
        "models:\n  a:\n    checkpoint: ckpt\n  b:\n    checkpoint: org/hub-model\n"
        "    default: true\ninclude:\n  - runs/models.yaml\n  - runs/missing.yaml\n",
    )
    registry = load_registry(path)
    assert registry.models["a"].checkpoint == str(tmp_path / "ckpt")
    assert registry.models["b"].checkpoint == "org/hub-model"  # a hub id stays one
    assert registry.models["extra"].checkpoint == str(tmp_path / "ckpt")
    assert registry.default_model == "b"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("models:\n  a:\n    checkpoint: x\n    dtyp: float32\n", 4, "dtyp"),
        ("models:\n  a:\n    checkpoint: x\n    dtype: float8\n", 4, "dtype"),
        ("models:\n  a:\n    dtype: float32\n", 2, "exactly one of `checkpoint`, `gguf` or `base`"),
        ("models:\n  a:\n    checkpoint: x\n    max_queue: 0\n", 4, "max_queue"),
        ("models:\n  a:\n    checkpoint: x\n  - b\n", 4, "not valid YAML"),
        ("models:\n  a:\n    checkpoint: x\n    device: gpu\n", 4, "device"),
        (
            "models:\n  a:\n    checkpoint: x\n    sampling:\n      temperature: 3\n",
            5,
            "sampling.temperature",
        ),
        ("models:\n  a:\n    checkpoint: x\n    sampling:\n      temprature: 0\n", 5, "temprature"),
        ("models:\n  a:\n    checkpoint: x\n    weight_format: int3\n", 4, "weight_format"),
        ("models:\n  a:\n    checkpoint: x\n    engine: onnx\n", 4, "engine"),
        (
            "models:\n  a:\n    checkpoint: x\n    engine: openvino\n    quantization: int8\n",
            2,
            "sets `weight_format`",
        ),
        (
            "models:\n  a:\n    checkpoint: x\n    engine: openvino\n    device: cuda\n",
            2,
            "runs on the CPU",
        ),
    ],
)
def test_errors_name_file_line_and_problem(tmp_path, text, line, fragment):
    path = write(tmp_path, text)
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    message = str(info.value)
    assert f"{path}:{line}" in message
    assert fragment in message


def test_two_defaults_and_empty(tmp_path):
    path = write(
        tmp_path,
        "models:\n  a:\n    checkpoint: x\n    default: true\n"
        "  b:\n    checkpoint: y\n    default: true\n",
    )
    with pytest.raises(RegistryError, match="more than one default model: a, b"):
        load_registry(path)
    with pytest.raises(RegistryError, match="no models"):
        load_registry(write(tmp_path, "models: {}\n"))


def test_serve_with_broken_registry_exits_with_message(tmp_path):
    path = write(tmp_path, "models:\n  a:\n    checkpoint: x\n    temperature: 3\n")
    result = run_backend("serve", "--config", str(path), "--port", "0", timeout=120)
    assert result.returncode == 2
    assert f"{path}:4: models.a.temperature" in result.stderr
    assert "Traceback" not in result.stderr


def test_sampling_defaults_fill_what_a_request_leaves_unset(tmp_path):
    from backend.validation import validate_sampling
    from chat.v1 import chat_pb2

    sampling = "    sampling:\n      temperature: 0\n      repetition_penalty: 1.1\n"
    path = write(tmp_path, f"models:\n  a:\n    checkpoint: x\n{sampling}      why: measured\n")
    spec = load_registry(path).models["a"]
    assert spec.sampling.why == "measured"
    unset = validate_sampling(chat_pb2.SamplingParams(), 2048, spec.sampling.config())
    assert (unset.temperature, unset.repetition_penalty, unset.top_p) == (0.0, 1.1, 1.0)
    given = validate_sampling(
        chat_pb2.SamplingParams(temperature=0.5), 2048, spec.sampling.config()
    )
    assert (given.temperature, given.repetition_penalty) == (0.5, 1.1)
