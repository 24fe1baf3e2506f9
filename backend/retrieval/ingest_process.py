"""Run `python -m backend ingest` as a background child process (`make demo`'s first build).

Design decisions:
- The ingest runs exactly as a user would run it (the CLI, with its progress bars and its
  daily-log entry), with its output in a log file, so the terminal stays free for what
  the user needs and `tail -f LOG` follows it.
- It runs at a lower CPU priority (nice 10): on a small machine the chat the user is
  trying stays responsive while embedding takes the cycles left over.
- It gets its own process group, so a Ctrl-C in the terminal reaches the parent, which
  decides: `stop()` sends SIGINT to the whole group (the ingest and its corpus-pipeline
  child), the same interrupt a Ctrl-C is, so the ingest keeps the embeddings it finished
  in its resume cache and the next run goes on from there; a group that has not ended
  after a grace period is killed.
- `progress()` is the last state of the progress bar in the log (tqdm separates its
  updates with carriage returns), so a parent can show it now and then without parsing
  anything else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

NICENESS = 10
TAIL_BYTES = 4096


def _lower_priority() -> None:
    os.nice(NICENESS)


class IngestProcess:
    def __init__(self, source: str, collection: str, index_dir: Path, log_path: Path) -> None:
        self.args = [sys.executable, "-m", "backend", "ingest", source]
        self.args += ["--collection", collection, "--index-dir", str(index_dir)]
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None

    def start(self) -> IngestProcess:
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                process_group=0,  # its own group: see the module docstring
                preexec_fn=_lower_priority,
            )
        return self

    @property
    def returncode(self) -> int | None:
        """None while it runs; its exit code once it has ended."""
        return None if self.process is None else self.process.poll()

    def progress(self) -> str:
        """The last line or progress-bar state the ingest wrote."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - TAIL_BYTES))
                tail = log.read().decode(errors="replace")
        except OSError:
            return ""
        parts = [p.strip() for p in tail.replace("\r", "\n").split("\n")]
        return next((p for p in reversed(parts) if p), "")

    def log_tail(self, lines: int = 10) -> str:
        text = self.log_path.read_text(errors="replace").replace("\r", "\n")
        return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])

    def stop(self, timeout: float = 30.0) -> int | None:
        """Interrupt it as Ctrl-C would (it resumes next time) and wait; kill it if it hangs.
        Returns its exit code, or None if it was never started."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGINT)
                self.process.wait(timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.wait()
