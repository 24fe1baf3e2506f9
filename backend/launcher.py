"""Start a backend server as a child process and wait until it serves.

One launcher for everything that needs a real server process: `make demo`, the
integration tests, the benchmarks and the load tests. It asks for free ports (port 0),
reads the bound ports from the server's `listening on` log line, then waits on gRPC
health rather than on sleeps, and reports the log's tail when the server dies early.
While it runs (and while it drains) its open streams are read from its own metrics.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from backend.client import ChatClient
from backend.settings import ClientSettings

_LISTENING = re.compile(r"listening on (\S+):(\d+) metrics on (\S+):(\d+)(?: http on (\S+):(\d+))?")


class BackendError(RuntimeError):
    pass


def stop_child(process: subprocess.Popen | None, sig: int, timeout: float) -> int | None:
    """Signal a child process and wait for it; kill it if it hangs. Its exit code, or None
    if it never started."""
    if process is None or process.poll() is not None:
        return None if process is None else process.returncode
    process.send_signal(sig)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


class BackendProcess:
    def __init__(
        self,
        config: Path | str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        metrics_port: int = 0,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        log_path: Path | str | None = None,
        client: ClientSettings | None = None,
        http_port: int | None = None,
    ) -> None:
        """`client`: how to reach it (TLS, key) for the health check; default: environment.
        `http_port`: serve the HTTP API too (0: a free port, read back as `self.http_port`)."""
        self.args = [sys.executable, "-m", "backend", "serve", "--host", host]
        self.args += ["--port", str(port), "--metrics-port", str(metrics_port)]
        if http_port is not None:
            self.args += ["--http-port", str(http_port)]
        if config is not None:
            self.args += ["--config", str(config)]
        self.args += extra_args or []
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.log_path = Path(log_path or tempfile.mkstemp(prefix="backend-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None
        self.host = host
        self.client = client
        self.port = 0
        self.metrics_host = host
        self.metrics_port = 0
        self.http_port = 0

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        """The HTTP API's base URL (`.../v1` is OpenAI's base_url)."""
        return f"http://{self.host}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.metrics_host}:{self.metrics_port}/metrics"

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def start(self, timeout: float = 600.0, wait_serving: bool = True) -> BackendProcess:
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env
            )
        deadline = time.monotonic() + timeout
        while not self.port:
            self._check_alive()
            match = _LISTENING.search(self.log_path.read_text(errors="replace"))
            if match:
                self.port, self.metrics_port = int(match[2]), int(match[4])
                self.metrics_host = match[3]
                self.http_port = int(match[6] or 0)
            elif time.monotonic() > deadline:
                self.stop()
                raise BackendError(f"backend did not start listening:\n{self.log_tail()}")
            else:
                time.sleep(0.1)
        if wait_serving:
            self.wait_serving(max(1.0, deadline - time.monotonic()))
        return self

    def wait_serving(self, timeout: float) -> None:
        with ChatClient(self.target, settings=self.client) as client:
            deadline = time.monotonic() + timeout
            while not client.is_serving(timeout=1.0):
                self._check_alive()
                if time.monotonic() > deadline:
                    raise BackendError(f"backend not serving after {timeout:.0f}s")
                time.sleep(0.2)

    def active_streams(self) -> int | None:
        """Chat streams the server has open (all models), from its /metrics; None when the
        endpoint does not answer (not started yet, or already stopped)."""
        try:
            text = urllib.request.urlopen(self.metrics_url, timeout=2).read().decode()
        except (urllib.error.URLError, OSError):
            return None
        return sum(
            int(sample.value)
            for family in text_string_to_metric_families(text)
            if family.name == "chatforge_active_streams"
            for sample in family.samples
        )

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise BackendError(
                f"backend exited with code {self.process.returncode}:\n{self.log_tail()}"
            )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int | None:
        """Signal the server (SIGTERM drains) and wait; kill it if it hangs."""
        return stop_child(self.process, sig, timeout)

    def __enter__(self) -> BackendProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
