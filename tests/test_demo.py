"""`make demo` (deploy/demo.py), run with the tiny models: it prints a URL that works once
the backend is healthy, and Ctrl-C (SIGINT to the whole process group, as a terminal sends
it) or SIGTERM (to the script alone) stops the UI and the backend, leaving nothing behind.
On a first run the documents are built in the background while the demo already serves,
the server picks the collection up when it is published, and stopping the demo stops the
build too."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from backend.client import ChatClient, RetryPolicy
from backend.retrieval.index import current_folder
from backend.retrieval.ingest_process import IngestProcess
from chat.v1 import chat_pb2
from tests.rag_fixtures import write_pages
from tests.tiny_model import make_tiny_model

ROOT = Path(__file__).resolve().parent.parent


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def processes_mentioning(text: str) -> list[int]:
    """Processes whose command line contains `text` (a test's unique temporary path)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue  # it ended while we looked
    return found


def start_demo(registry: Path, log_dir: Path, *args: str) -> subprocess.Popen:
    """`make demo` on free ports; `args` choose the documents (and anything else)."""
    command = [sys.executable, str(ROOT / "deploy" / "demo.py"), "--config", str(registry)]
    command += ["--grpc-port", "0", "--metrics-port", "0", "--ui-port", "0"]
    command += ["--log-dir", str(log_dir), *args]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )


def docs_args(pages: Path, index_dir: Path) -> list[str]:
    return ["--docs", str(pages), "--docs-index", str(index_dir)]


def read_until(demo: subprocess.Popen, marker: str) -> str:
    """What the demo printed up to and including the line containing `marker`."""
    printed = ""
    for line in demo.stdout:
        printed += line
        if marker in line:
            return printed
    raise AssertionError(f"the demo ended without printing {marker!r}:\n{printed}")


def stop_demo(demo: subprocess.Popen, stop: str) -> str:
    """Stop it as a terminal's Ctrl-C or a SIGTERM would; what it printed meanwhile."""
    if stop == "ctrl-c":
        os.killpg(demo.pid, signal.SIGINT)
    else:
        demo.send_signal(signal.SIGTERM)
    assert demo.wait(timeout=90) == 0
    printed = demo.stdout.read()
    assert "stopped the UI and the backend" in printed
    assert not group_alive(demo.pid), "a server outlived the demo"
    return printed


@pytest.fixture
def cleanup():
    demos: list[subprocess.Popen] = []
    yield demos.append
    for demo in demos:
        if group_alive(demo.pid):
            os.killpg(demo.pid, signal.SIGKILL)
        demo.stdout.close()


@pytest.mark.slow
def test_demo_serves_until_ctrl_c(tiny_registry, docs_index, tmp_path, cleanup):
    pages, index_dir, _ = docs_index
    demo = start_demo(tiny_registry, tmp_path, *docs_args(pages, index_dir))
    cleanup(demo)
    printed = read_until(demo, "chatforge is ready")
    url = re.search(r"open (http://\S+)", printed)
    target = re.search(r"serving gRPC on (\S+),", printed)
    assert url and target, printed
    with urllib.request.urlopen(url[1], timeout=10) as response:
        assert response.status == 200
    with ChatClient(target[1]) as client:
        assert client.is_serving()
        [collection] = client.list_collections().collections
    assert collection.name == pages.name and collection.documents == 4
    assert f"docs: collection {pages.name} from {index_dir}" in printed  # built before

    printed += stop_demo(demo, "ctrl-c")
    assert "Traceback" not in printed and "documents build" not in printed


@pytest.mark.slow
def test_first_run_chats_at_once_and_builds_the_docs_in_the_background(
    tiny_registry, tmp_path, cleanup
):
    pages = write_pages(tmp_path / "notes")
    index_dir = tmp_path / "collections" / "notes"
    demo = start_demo(tiny_registry, tmp_path / "logs", *docs_args(pages, index_dir))
    cleanup(demo)
    printed = read_until(demo, "chatforge is ready")
    building = f"docs: building collection notes from {pages} in the background"
    assert building in printed
    logs = Path(re.search(r"progress: (\S+)", printed)[1]).parent  # this run's own folder
    assert logs.parent == tmp_path / "logs" and (logs / "ingest.log").is_file()
    assert printed.index(building) < printed.index("backend: starting")  # not waited for
    target = re.search(r"serving gRPC on (\S+),", printed)[1]

    printed += read_until(demo, "docs: collection notes is")
    assert "docs: collection notes is ready (4 documents" in printed, printed
    with ChatClient(target) as client:
        [collection] = client.list_collections().collections
        chunks = client.retrieve("How hot should green tea water be?", k=1).chunks
    assert (collection.name, collection.building, collection.documents) == ("notes", False, 4)
    assert chunks[0].source_path == "tea.txt"
    # the server that was serving all along picked the new index up, without a restart
    backend_log = (logs / "backend.log").read_text()
    assert "collection notes: no index published" in backend_log
    assert "collection notes: version (being built) -> " in backend_log
    assert "collection notes: version" in (logs / "ingest.log").read_text()

    printed += stop_demo(demo, "sigterm")
    assert "Traceback" not in printed and "stopped the documents build" not in printed


@pytest.mark.slow
def test_stopping_the_demo_stops_the_background_build(tiny_registry, tmp_path, cleanup):
    pages = write_pages(tmp_path / "notes")
    index_dir = tmp_path / "collections" / "notes"
    demo = start_demo(tiny_registry, tmp_path / "logs", *docs_args(pages, index_dir))
    cleanup(demo)
    printed = read_until(demo, "in the background")
    assert processes_mentioning(str(index_dir))  # the ingest runs, in its own group
    printed += stop_demo(demo, "ctrl-c")  # before the build could finish
    assert "stopped the documents build; the next run resumes it." in printed
    assert not processes_mentioning(str(index_dir)), "the ingest outlived the demo"
    assert current_folder(index_dir) is None  # nothing half-published
    assert "Traceback" not in printed


@pytest.mark.slow
def test_ctrl_c_says_what_it_waits_for_and_a_second_one_stops_at_once(tmp_path, cleanup):
    # A context long enough that no stream can finish by itself during the test.
    model = make_tiny_model(tmp_path / "long", context=32_768, layers=1)
    registry = tmp_path / "models.yaml"
    registry.write_text(f"models:\n  long:\n    checkpoint: {model}\n    default: true\n")
    demo = start_demo(registry, tmp_path, "--docs", "none", "--grace", "120")
    cleanup(demo)
    target = re.search(r"serving gRPC on (\S+),", read_until(demo, "chatforge is ready"))[1]
    client = ChatClient(target, retry=RetryPolicy(attempts=1))
    streams = [client.chat("Go on", sampling={"max_tokens": 30_000}) for _ in range(2)]
    events = [iter(stream) for stream in streams]
    for stream_events in events:  # both are decoding
        while not next(stream_events).HasField("delta"):
            pass

    os.killpg(demo.pid, signal.SIGINT)
    printed = read_until(demo, "Ctrl-C again to stop now")
    assert "backend: waiting up to 120 s for 2 streams to finish; Ctrl-C again to stop now" in (
        printed
    )
    streams[0].cancel()  # one finishes: the count shown follows
    printed += read_until(demo, "still running")
    assert re.search(r"backend: 1 stream still running, \d+ s left; Ctrl-C again", printed)

    os.killpg(demo.pid, signal.SIGINT)
    asked = time.monotonic()
    assert demo.wait(timeout=60) == 0
    stopped_after = time.monotonic() - asked
    printed += demo.stdout.read()
    assert "backend: stopping now, cancelling 1 stream" in printed
    assert "stopped the UI and the backend" in printed and "Traceback" not in printed
    assert stopped_after < 30, stopped_after  # not the 120 s grace period
    (backend_log,) = tmp_path.glob("*/backend.log")  # one folder per demo run
    assert "stopping now; cancelling 1 streams" in backend_log.read_text()
    # The stream still in flight was cancelled: it ends CANCELLED, or cut off with the
    # server, not run to its 30,000 tokens.
    rest = []
    try:
        rest.extend(events[1])
    except grpc.RpcError as error:
        assert error.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    client.close()
    finished = [e.finished.finish_reason for e in rest if e.HasField("finished")]
    assert finished in ([], [chat_pb2.CANCELLED]), finished
    assert not group_alive(demo.pid), "a server outlived the demo"


def test_each_run_gets_its_own_log_folder(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("demo", ROOT / "deploy" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "demo", demo)  # its dataclasses look themselves up
    spec.loader.exec_module(demo)
    first, second = demo.run_log_dir(tmp_path), demo.run_log_dir(tmp_path)  # same second
    (first / "backend.log").write_text("the first run's log\n")
    assert first != second and first.parent == second.parent == tmp_path
    assert not (second / "backend.log").exists()
    assert (first / "backend.log").read_text() == "the first run's log\n"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--config", "no-such-models.yaml"], {}, "cannot read the registry"),
        ([], {"CHATFORGE_UI_PORT": "web"}, "$CHATFORGE_UI_PORT='web' is not a port number"),
    ],
)
def test_demo_names_bad_settings(args, env, message, tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "demo.py"), *args, "--log-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_build_progress_is_the_latest_state_of_its_progress_bar(tmp_path):
    log = tmp_path / "ingest.log"
    build = IngestProcess("pages", "notes", tmp_path / "index", log)
    assert build.progress() == "" and build.returncode is None and build.stop() is None
    log.write_text("running the corpus pipeline\nembedding:  10%|#    | 1/10\r"
                   "embedding:  20%|##   | 2/10\r")  # fmt: skip
    assert build.progress() == "embedding:  20%|##   | 2/10"
    assert build.log_tail(2) == "embedding:  10%|#    | 1/10\nembedding:  20%|##   | 2/10"
