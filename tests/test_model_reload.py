"""Models without restarts (backend/model_reload.py) on real tiny models: a reload adds
what models.yaml gained, reloads what changed, keeps the rest as they are, retires what
went away only once its streams have finished, changes nothing for a broken file, and the
watcher notices an edit by itself."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from backend.chat_service import ModelSet
from backend.engine import EngineStoppedError
from backend.model_loader import load_models
from backend.model_reload import ModelReloader, fingerprint
from backend.registry import load_registry
from backend.sampling import SamplingConfig
from tests.helpers import wait_for


def stopped(engine) -> bool:
    """The engine takes no more work (it was stopped)."""
    try:
        engine.submit([1, 2], SamplingConfig(max_tokens=1)).cancel()
    except EngineStoppedError:
        return True
    return False


def write(path: Path, models: dict[str, str]) -> None:
    path.write_text("models:\n" + "".join(f"  {n}:\n{e}" for n, e in models.items()))


@pytest.fixture
def served(tmp_path, tiny_model_dir):
    registry = tmp_path / "models.yaml"
    write(registry, {"a": f"    checkpoint: {tiny_model_dir}\n    default: true\n"})
    models = ModelSet()
    models.models = {m.name: m for m in load_models(load_registry(registry).models)}
    models.default = "a"
    models.ready.set()
    reloader = ModelReloader(models, registry, retire_after=60)
    yield models, reloader, registry
    reloader.close()
    for loaded in models.models.values():
        loaded.engine.stop()


def test_added_changed_and_unchanged_models(served, tiny_model_dir):
    models, reloader, registry = served
    first = models.models["a"]
    entry = f"    checkpoint: {tiny_model_dir}\n"
    write(registry, {"a": entry + "    default: true\n", "b": entry})
    result = reloader.reload()
    assert (result.added, result.unchanged, result.removed, result.errors) == (["b"], ["a"], [], [])
    assert models.models["a"] is first  # untouched: same weights, same engine
    assert models.models["b"].engine.generate([1, 2, 3], SamplingConfig(max_tokens=4))

    write(registry, {"a": entry + "    max_queue: 7\n", "b": entry + "    default: true\n"})
    result = reloader.reload()
    assert (result.reloaded, result.default) == (["a"], "b")
    assert models.models["a"] is not first and models.models["a"].spec.max_queue == 7
    assert wait_for(lambda: stopped(first.engine), 10)  # the old one stopped


def test_a_removed_model_finishes_its_streams_first(served, tiny_model_dir):
    models, reloader, registry = served
    loaded = models.models["a"]
    generation = loaded.engine.submit([1, 2, 3], SamplingConfig(max_tokens=300, temperature=0))
    tokens: list[int] = []
    reader = threading.Thread(target=lambda: tokens.extend(generation))
    reader.start()
    assert wait_for(lambda: loaded.engine.running == 1, 10)
    write(registry, {"b": f"    checkpoint: {tiny_model_dir}\n    default: true\n"})
    result = reloader.reload()
    assert (result.added, result.removed, list(models.models), models.default) == (
        ["b"], ["a"], ["b"], "b"
    )  # fmt: skip
    reader.join(60)
    assert len(tokens) == 300, "the stream in flight was cut short"
    assert wait_for(lambda: stopped(loaded.engine), 10)


def test_a_broken_registry_changes_nothing(served):
    models, reloader, registry = served
    before = dict(models.models)
    registry.write_text("models:\n  a:\n    checkpoint: x\n    quantization: int3\n")
    result = reloader.reload()
    assert not result.changed and "quantization" in result.errors[0]
    assert models.models == before


def test_the_watcher_picks_up_an_included_file(served, tiny_model_dir):
    models, reloader, registry = served
    registry.write_text(registry.read_text() + "include:\n  - runs/models.yaml\n")
    reloader.reload()
    seen = fingerprint(registry)
    reloader.watch(0.2)
    (registry.parent / "runs").mkdir()
    write(
        registry.parent / "runs" / "models.yaml", {"trained": f"    checkpoint: {tiny_model_dir}\n"}
    )
    assert fingerprint(registry) != seen  # a new included file counts as a change
    assert wait_for(lambda: "trained" in models.models, 60)
    assert models.default == "a"
