"""Shared fixtures: tiny random models, real server processes on 127.0.0.1, and the UI in
headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Browser, Page, sync_playwright

from backend.guardrails.policy import DEFAULT_POLICY
from backend.keys import Limits, add_key
from backend.launcher import BackendProcess
from backend.registry import DEFAULT_CONFIG, load_registry
from tests.tiny_model import make_tiny_model
from tests.ui_env import build_ui_env
from training.corpus import build_corpus
from ui.launcher import UiProcess

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Test runs must not write into the project's daily-log/.
os.environ["CHATFORGE_DAILY_LOG"] = tempfile.mkdtemp(prefix="daily-log-")
# ... nor eval run folders into runs/evals/ (the UI process inherits this too).
os.environ["CHATFORGE_EVAL_RUNS"] = tempfile.mkdtemp(prefix="eval-runs-")


def _policy_without_the_built_classifier() -> str:
    """The repository's guardrails.yaml with its classifier pointed at nothing, so servers
    under test judge as on a fresh clone (rules only) whether or not `make demo` has built
    runs/guard/classifier here: that artifact changes verdicts and adds seconds to every
    start-up. Tests of the classifier give servers a policy of their own (--policy)."""
    policy = yaml.safe_load(DEFAULT_POLICY.read_text())
    folder = Path(tempfile.mkdtemp(prefix="policy-"))
    policy["classifier"]["path"] = str(folder / "no-classifier")
    (folder / "guardrails.yaml").write_text(yaml.safe_dump(policy, allow_unicode=True))
    return str(folder / "guardrails.yaml")


# `python -m backend serve` (every server process the tests start) reads it.
os.environ["CHATFORGE_POLICY"] = _policy_without_the_built_classifier()

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# The shared servers decode every request: a cached replay would let a test of repeated
# greedy calls (determinism, concurrency) pass without generating. The cache has its own
# server in tests/test_guard_server.py.
NO_CACHE = ["--cache-entries", "0"]


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_registry(tmp_path_factory, tiny_model_dir) -> Path:
    """Two tiny models in a models.yaml: `tiny` (the default, the server's sampling
    defaults) and `tiny-b`, whose engine takes one request at a time with a queue of one,
    to make back-pressure testable, and which has sampling defaults of its own."""
    other = make_tiny_model(tmp_path_factory.mktemp("tiny-b") / "model", seed=1)
    path = tmp_path_factory.mktemp("registry") / "models.yaml"
    path.write_text(
        f"models:\n"
        f"  tiny:\n    checkpoint: {tiny_model_dir}\n    default: true\n"
        f"  tiny-b:\n    checkpoint: {other}\n    max_batch_size: 1\n    max_queue: 1\n"
        f"    sampling:\n      temperature: 0.3\n      top_p: 0.9\n"
        f"      repetition_penalty: 1.2\n      why: tiny-b's own defaults\n"
    )
    return path


@pytest.fixture(scope="session")
def tiny_server(tiny_registry, tmp_path_factory):
    """A real server process serving the tiny models; shared by the session."""
    log = tmp_path_factory.mktemp("logs") / "tiny-server.log"
    with BackendProcess(tiny_registry, extra_args=NO_CACHE, log_path=log, http_port=0) as server:
        yield server


@pytest.fixture(scope="session")
def default_server(tmp_path_factory):
    """A real server process with the real default model (SmolLM2-135M-Instruct) alone,
    whatever a developer's runs/models.yaml has registered beside it, with the sampling
    defaults the committed models.yaml gives it."""
    folder = tmp_path_factory.mktemp("default")
    registry = folder / "models.yaml"
    spec = load_registry(DEFAULT_CONFIG).models["smollm2-135m-instruct"]
    sampling = spec.sampling.model_dump(exclude_none=True)
    entry = {"gguf": "builtin", "default": True, "sampling": sampling}
    registry.write_text(yaml.safe_dump({"models": {"smollm2-135m-instruct": entry}}))
    with BackendProcess(registry, extra_args=NO_CACHE, log_path=folder / "server.log") as server:
        yield server


# --- API keys: a keys file and a server that requires them -----------------------------

UNLIMITED = Limits(0, 0, 0)


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> dict[str, str]:
    """Plain keys by role or purpose, in one keys file (`keys["file"]`)."""
    path = tmp_path_factory.mktemp("keys") / "keys.yaml"
    made = {"file": str(path)}
    made["admin"], _ = add_key(path, "admin", "admin", UNLIMITED)
    made["user"], _ = add_key(path, "user", "user", UNLIMITED)
    made["to-revoke"], _ = add_key(path, "to-revoke", "user", UNLIMITED)
    made["rpm"], _ = add_key(path, "rpm", "user", Limits(3, 0, 0))
    made["streams"], _ = add_key(path, "streams", "user", Limits(0, 1, 0))
    made["tpm"], _ = add_key(path, "tpm", "user", Limits(0, 0, 20))
    made["shared-rpm"], _ = add_key(path, "shared-rpm", "user", Limits(2, 0, 0))  # both APIs
    made["expired"], _ = add_key(path, "expired", "user", UNLIMITED, expires_days=1)
    data = yaml.safe_load(path.read_text())
    for entry in data["keys"]:
        if entry["name"] == "expired":
            entry["expires"] = "2020-01-01T00:00:00+00:00"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return made


@pytest.fixture(scope="session")
def locked_server(tiny_registry, keys, tmp_path_factory):
    """The tiny models behind API keys (`keys`); shared by the auth and UI login tests."""
    log = tmp_path_factory.mktemp("logs") / "locked-server.log"
    extra = ["--keys-file", keys["file"], *NO_CACHE]
    with BackendProcess(tiny_registry, extra_args=extra, log_path=log, http_port=0) as server:
        yield server


# --- Evals: a corpus with held-out pages, and cleaning up what runs record ---------

TOPICS = ["parsers", "sockets", "threads", "archives", "dates", "paths", "queues", "codecs"]


@pytest.fixture(scope="session")
def eval_pages(tmp_path_factory) -> Path:
    """The pages of `eval_corpus`: one Markdown page per topic."""
    source = tmp_path_factory.mktemp("pages")
    for i, topic in enumerate(TOPICS):
        (source / f"{topic}.md").write_text(
            f"# Working with {topic}\n\n"
            f"The {topic} module number {i} handles {topic} for the whole program. "
            f"It was added in release {i + 2} of the library.\n\n"
            f"## Opening {topic}\n\n"
            f"Call open_{topic}() with a name to get a handle on {topic}. "
            f"The handle closes itself when the block ends.\n\n"
            f"## Errors in {topic}\n\n"
            f"A failure in {topic} raises {topic.capitalize()}Error with a message. "
            f"Catch it near the call that opened the {topic}.\n"
        )
    return source


@pytest.fixture(scope="session")
def eval_corpus(eval_pages, tmp_path_factory) -> Path:
    """A small corpus with enough held-out pages for every corpus suite."""
    out, manifest = build_corpus(str(eval_pages), tmp_path_factory.mktemp("corpus") / "c",
                                 seed=0, val_fraction=0.1, test_fraction=0.6)  # fmt: skip
    assert manifest["counts"]["test"] >= 4
    return out


@pytest.fixture
def tiny_evals_dir(tiny_model_dir):
    """The files RecordEval writes into the tiny model's evals/ are removed afterwards."""
    folder = tiny_model_dir / "evals"
    before = set(folder.glob("*.json")) if folder.is_dir() else set()
    yield folder
    for path in set(folder.glob("*.json")) - before:
        path.unlink()


# --- The UI in a browser ---------------------------------------------------------------

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def ui_python(tmp_path_factory) -> Path:
    """The python of a venv holding only the UI's dependency set (tests/ui_env.py)."""
    python = build_ui_env(tmp_path_factory.mktemp("ui-env") / "venv")
    torch = subprocess.run([str(python), "-c", "import torch"], capture_output=True, text=True)
    assert "No module named 'torch'" in torch.stderr  # the UI's set only
    return python


@pytest.fixture(scope="session")
def ui(tiny_server, tmp_path_factory) -> Iterator[UiProcess]:
    """A real `python -m ui` process talking to `tiny_server`; shared by the session."""
    log = tmp_path_factory.mktemp("logs") / "ui.log"
    with UiProcess(tiny_server.target, log_path=log) as process:
        yield process


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    yield page
    page.close()


# --- Retrieval: a small collection, and a server that serves it ------------------------


def ingest(pages: Path, name: str, index_dir: Path) -> str:
    """Ingest `pages` as collection `name` by the CLI a user runs (`python -m backend
    ingest FOLDER`); its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "backend", "ingest", str(pages), "--collection", name,
         "--index-dir", str(index_dir), "--base-url", "https://docs.example.org/"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="session")
def docs_index(tmp_path_factory):
    """The pages of tests/rag_fixtures.py ingested as collection `docs`; yields (pages
    folder, index folder, stdout)."""
    from tests.rag_fixtures import write_pages

    pages = write_pages(tmp_path_factory.mktemp("pages"))
    index_dir = tmp_path_factory.mktemp("collections") / "docs"
    return pages, index_dir, ingest(pages, "docs", index_dir)


@pytest.fixture(scope="session")
def rag_server(tiny_registry, docs_index, tmp_path_factory):
    """The tiny models plus the `docs` collection (`serve --collection docs=DIR`)."""
    log = tmp_path_factory.mktemp("logs") / "rag-server.log"
    extra = ["--collection", f"docs={docs_index[1]}"]
    with BackendProcess(tiny_registry, extra_args=extra, log_path=log, http_port=0) as server:
        yield server
