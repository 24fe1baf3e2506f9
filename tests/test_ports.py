"""Ports picked in a parent for its children (chatforge/ports.py): a held port is handed to
no one else, the child can still serve on it, and the UI launcher's two ports (page and
metrics) never collide, as they once did when each came from a socket closed at once."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request

from chatforge.ports import PortReservation
from tests.helpers import wait_for
from ui.launcher import UiProcess


def picked_port() -> int:
    """What a `free_port()` elsewhere would return: the OS's pick, closed at once."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_held_port_is_never_picked_again():
    with PortReservation() as first, PortReservation() as second:
        assert first.port != second.port
        picks = {picked_port() for _ in range(1000)}
        assert not picks & {first.port, second.port}


def test_the_child_serves_on_the_port_held_for_it(tmp_path):
    with PortReservation() as held:
        child = subprocess.Popen(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(held.port)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            url = f"http://127.0.0.1:{held.port}/"
            assert wait_for(lambda: _status(url) == 200, timeout=30), child.stderr
            held.release()
            assert _status(url) == 200
        finally:
            child.terminate()
            child.wait(10)


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except OSError:
        return None


def test_the_ui_serves_page_and_metrics_on_ports_of_their_own(ui: UiProcess):
    assert ui.port != ui.metrics_port
    with urllib.request.urlopen(ui.url, timeout=10) as page:
        assert "<html" in page.read().decode().lower()
    with urllib.request.urlopen(ui.metrics_url, timeout=10) as metrics:
        assert "chatforge_ui" in metrics.read().decode()
