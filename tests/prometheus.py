"""A real Prometheus (Debian's package) for tests: the repository's prometheus.yml with
the scrape targets pointed at live processes, on a free port, queried over its HTTP API."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from backend.launcher import stop_child
from chatforge.ports import PortReservation

OBSERVABILITY = Path(__file__).resolve().parent.parent / "deploy" / "observability"


class PrometheusProcess:
    def __init__(self, folder: Path, targets: dict[str, str], interval: str = "2s") -> None:
        """`targets`: job name -> host:port, replacing the config's own targets."""
        config = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
        config["global"] = {"scrape_interval": interval, "evaluation_interval": interval}
        config["rule_files"] = [str(OBSERVABILITY / name) for name in config["rule_files"]]
        for job in config["scrape_configs"]:
            job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
        self.config_path = folder / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self._reserved = PortReservation()  # held until Prometheus answers on it
        self.port = self._reserved.port
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = ["prometheus", f"--config.file={self.config_path}",
                     f"--storage.tsdb.path={folder / 'data'}",
                     f"--web.listen-address=127.0.0.1:{self.port}"]  # fmt: skip
        self.log_path = folder / "prometheus.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> PrometheusProcess:
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        try:
            while not self._ready():
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"prometheus did not start:\n{self.log_path.read_text()}")
                time.sleep(0.2)
        finally:
            self._reserved.release()
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def api(self, path: str, **params: str) -> dict:
        """GET /api/v1/PATH; the JSON answer (status error too: HTTP 400/422 say why)."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            return json.load(error)

    def query(self, expr: str) -> dict:
        return self.api("query", query=expr)

    def stop(self) -> None:
        stop_child(self.process, signal.SIGTERM, 30)

    def __enter__(self) -> PrometheusProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
