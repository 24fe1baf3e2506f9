"""Start the UI (`python -m ui`) as a child process and wait until its page answers.

`make demo` and the browser tests use it. It mirrors `backend.launcher.BackendProcess`
in spirit (log to a file, fail with the log's tail, stop with a signal) but waits on HTTP,
the UI's own readiness signal, instead of gRPC health.

Design decisions:
- Port 0 means "any free port" (for the page and for the UI's metrics): each is reserved
  here (`chatforge.ports.PortReservation`: a bound socket held open) and the UI is told to
  use it; the reservations are released once the page answers and the metrics endpoint is
  up. Held together, the two can never be the same port, and no other process picking a
  free port meanwhile can take either (two throw-away sockets, closed at once, once gave
  the page and the metrics the same port). The UI's own CLI stays strict (a real port or
  an error).
- Readiness is an HTTP 200 from the page, polled until a deadline, checking that the
  process is still alive between polls so a crash is reported at once with its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from backend.launcher import stop_child
from chatforge.ports import PortReservation


class UiError(RuntimeError):
    pass


class UiProcess:
    def __init__(
        self,
        backend: str,
        host: str = "127.0.0.1",
        port: int = 0,
        metrics_port: int = 0,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        log_path: Path | str | None = None,
        python: Path | str = sys.executable,
    ) -> None:
        """`python`: the interpreter to run the UI with (another venv: the UI-only test)."""
        self.host = host
        self._reserved = [PortReservation(host) for wanted in (port, metrics_port) if not wanted]
        free = iter(reservation.port for reservation in self._reserved)
        self.port = port or next(free)
        self.metrics_port = metrics_port or next(free)
        self.args = [str(python), "-m", "ui", "--backend", backend]
        self.args += ["--host", host, "--port", str(self.port)]
        self.args += ["--metrics-port", str(self.metrics_port), *(extra_args or [])]
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "GRADIO_ANALYTICS_ENABLED": "False",
            **(env or {}),
        }
        self.log_path = Path(log_path or tempfile.mkstemp(prefix="ui-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host == "0.0.0.0" else self.host
        return f"http://{host}:{self.port}/"

    @property
    def metrics_url(self) -> str:
        host = "127.0.0.1" if self.host == "0.0.0.0" else self.host
        return f"http://{host}:{self.metrics_port}/metrics"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def start(self, timeout: float = 120.0) -> UiProcess:
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env
            )
        deadline = time.monotonic() + timeout
        try:
            while not (self._answers(self.url) and self._answers(self.metrics_url)):
                if self.process.poll() is not None:
                    code = self.process.returncode
                    raise UiError(f"UI exited with code {code}:\n{self.log_tail()}")
                if time.monotonic() > deadline:
                    self.stop()
                    raise UiError(f"UI not answering at {self.url} after {timeout:.0f}s")
                time.sleep(0.2)
        finally:
            self._release_ports()
        return self

    def _release_ports(self) -> None:
        for reservation in self._reserved:
            reservation.release()
        self._reserved = []

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Signal the UI and wait for it to exit; kill it if it hangs."""
        self._release_ports()
        return stop_child(self.process, sig, timeout)

    def __enter__(self) -> UiProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
