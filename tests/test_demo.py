"""`make demo` (deploy/demo.py), run with the tiny models: it prints a URL that works once
the backend is healthy, and Ctrl-C (SIGINT to the whole process group, as a terminal sends
it) or SIGTERM (to the script alone) stops the UI and the backend, leaving nothing behind."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from backend.client import ChatClient
from backend.retrieval.index import current_folder

ROOT = Path(__file__).resolve().parent.parent


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_demo_serves_until_stopped(tiny_registry, docs_index, tmp_path, stop):
    pages, index_dir, _ = docs_index
    command = [sys.executable, str(ROOT / "deploy" / "demo.py"), "--config", str(tiny_registry)]
    command += ["--grpc-port", "0", "--metrics-port", "0", "--ui-port", "0"]
    command += ["--log-dir", str(tmp_path), "--docs", str(pages), "--docs-index", str(index_dir)]
    demo = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    try:
        printed = ""
        for line in demo.stdout:
            printed += line
            if "chatforge is ready" in line:
                break
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

        if stop == "ctrl-c":
            os.killpg(demo.pid, signal.SIGINT)
        else:
            demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=90) == 0
        printed += demo.stdout.read()
        assert "stopped the UI and the backend" in printed
        assert "Traceback" not in printed
        assert not group_alive(demo.pid), "a server outlived the demo"
    finally:
        if group_alive(demo.pid):
            os.killpg(demo.pid, signal.SIGKILL)
        demo.stdout.close()


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


def test_demo_builds_the_docs_collection_on_first_run_only(tmp_path, capfd):
    spec = importlib.util.spec_from_file_location("demo", ROOT / "deploy" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    pages = tmp_path / "notes"
    pages.mkdir()
    (pages / "kites.md").write_text("# Kites\n\nKites fly best in a steady wind.\n")
    args = demo.parse_args(["--docs", str(pages), "--docs-index", str(tmp_path / "index")])

    assert demo.docs_collection(args) == ("notes", tmp_path / "index")
    assert "docs: building collection notes" in capfd.readouterr().out
    version = current_folder(tmp_path / "index")
    assert version is not None
    assert demo.docs_collection(args) == ("notes", tmp_path / "index")
    assert "docs: collection notes from" in capfd.readouterr().out
    assert current_folder(tmp_path / "index") == version
    assert demo.docs_collection(demo.parse_args(["--docs", "none"])) is None
