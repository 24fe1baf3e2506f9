"""RunEval: an eval suite run on the server's host, as a child process relayed as a stream.

Design decisions:
- The server knows no eval code (architecture.json's `never`: Server -> Evals, checked by
  tests/test_layering.py); it knows the evals' command line. A run is the child process
  `python -m evals run SUITE --target unix:SOCKET --model MODEL --progress jsonl
  [--size N | --full] [--eval-arg ...]`, whose JSON lines (evals/progress_lines.py) become
  EvalProgress messages. So a run started over gRPC is exactly a `python -m evals run`:
  the same run folder, results file, copy in the model's evals/ (through RecordEval) and
  daily-log entry, on the host where the corpus and the checkpoints are.
- A process, not a thread of the server: the suites bring their own dependencies and
  data, a crash or a leak in them cannot take the server down, and stopping is killing.
  When the client cancels (or its deadline passes), the handler's task is cancelled and
  the `finally` here terminates the child (SIGTERM, SIGKILL after KILL_AFTER seconds); its
  run folder keeps the finished rows for `--resume`.
- The child calls its own server back over a Unix socket that the server listens on
  besides its TCP port, in a private (0700) folder (backend/server.py): no TLS to set up
  for it (certificate names, client certificates), nothing reachable from the network,
  and only the server's own OS user can connect. Behind API keys the child presents a
  run key (backend/run_keys.py), issued for this run and revoked when it ends, handed
  over in its environment, never on the command line (`ps` shows command lines).
- Checked before anything starts, as INVALID_ARGUMENT saying what to use instead: the
  suite (the names come from `python -m evals list --json`, asked once and kept), the
  model (resolved by the caller to its served name, so the child runs on exactly that
  model) and the size.
- The child's stdout is read line by line on the event loop (asyncio pipes: no thread per
  run); its stderr (tqdm's bar, warnings, errors) is drained meanwhile into a short tail,
  whose last line is the message when the child fails: exit status 2, the evals CLI's
  "cannot run as asked" (no corpus on this host, a server-only suite...), answers
  FAILED_PRECONDITION, any other failure INTERNAL.
- What a run needs from this host beyond the request (where the corpus is, the public
  attack sets, a questions file) is the operator's: `serve --eval-arg=--corpus=DIR`
  (repeatable) adds arguments to every run.
- The last message is the summary of the results file (backend/eval_files.py) under its
  name in the model's evals/, so GetEvalRows reads its rows next.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import deque
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc

from backend import eval_files
from backend.run_keys import RunKeys
from backend.validation import RequestError, invalid
from chat.v1 import chat_pb2

KILL_AFTER = 5.0  # seconds a terminated run may take to exit before it is killed
STDERR_TAIL = 20  # lines of the child's stderr kept for an error message
CANNOT_RUN = 2  # the evals CLI's exit status for a run it cannot do as asked
# The child reaches its server over the private socket in plaintext: client TLS settings
# the server's environment may hold for other clients must not reach it.
_CLIENT_TLS = ("CHATFORGE_TLS_CA", "CHATFORGE_TLS_CLIENT_CERT", "CHATFORGE_TLS_CLIENT_KEY")


class EvalRuns:
    """Starts eval runs against this server at `address` (its Unix socket)."""

    def __init__(
        self,
        address: str,
        run_keys: RunKeys,
        extra_args: Sequence[str] = (),
        python: str = sys.executable,
    ) -> None:
        self.address = address
        self.run_keys = run_keys
        self.extra_args = list(extra_args)
        self.python = python
        self._suites: list[str] | None = None
        self._listing = asyncio.Lock()

    async def suites(self) -> list[str]:
        """The suite names the evals CLI of this host knows (asked once)."""
        async with self._listing:
            if self._suites is None:
                child = await asyncio.create_subprocess_exec(
                    self.python, "-m", "evals", "list", "--json",
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )  # fmt: skip
                out, err = await child.communicate()
                if child.returncode != 0:
                    raise RequestError(
                        grpc.StatusCode.INTERNAL,
                        f"`python -m evals list` failed on the server: {_last_line(err)}",
                    )
                self._suites = [json.loads(line)["name"] for line in out.decode().splitlines()]
        return self._suites

    async def command(self, request: chat_pb2.RunEvalRequest, model: str) -> list[str]:
        """The child's command line for a valid request; INVALID_ARGUMENT otherwise."""
        suites = await self.suites()
        if request.suite not in suites:
            raise invalid(f"suite: unknown suite {request.suite!r}; use one of {', '.join(suites)}")
        if request.size < 0:
            raise invalid(
                f"size: {request.size} is negative; give the number of items to run, or 0 "
                "for the suite's small default"
            )
        command = [self.python, "-m", "evals", "run", request.suite, "--target", self.address,
                   "--model", model, "--progress", "jsonl"]  # fmt: skip
        if request.full:
            command.append("--full")
        elif request.size:
            command += ["--size", str(request.size)]
        return command + self.extra_args

    async def run(
        self, command: list[str], suite: str, model: str
    ) -> AsyncIterator[chat_pb2.EvalProgress]:
        """The run's progress; the child is stopped however the caller stops reading."""
        key = self.run_keys.issue(f"RunEval {suite} on {model}")
        env = {**os.environ, "CHATFORGE_API_KEY": key, "PYTHONUNBUFFERED": "1"}
        for name in _CLIENT_TLS:
            env.pop(name, None)
        child = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        errors: deque[str] = deque(maxlen=STDERR_TAIL)
        draining = asyncio.ensure_future(_tail(child.stderr, errors))
        finished = None
        try:
            async for raw in child.stdout:
                line = _event(raw)
                if line is None:
                    continue
                if line["event"] == "finished":
                    finished = line
                    continue
                yield _progress(line, suite, model)
            code = await child.wait()
            await draining
            if code != 0 or finished is None:
                raise _failure(code, errors)
            yield chat_pb2.EvalProgress(finished=await asyncio.to_thread(_summary, finished))
        finally:
            self.run_keys.revoke(key)
            if child.returncode is None:
                await _stop(child)
            draining.cancel()


def _event(raw: bytes) -> dict | None:
    """A progress line; None for anything else a library may have printed to stdout."""
    try:
        line = json.loads(raw)
    except ValueError:
        return None
    return line if isinstance(line, dict) and "event" in line else None


def _progress(line: dict, suite: str, model: str) -> chat_pb2.EvalProgress:
    if line["event"] == "started":
        return chat_pb2.EvalProgress(
            started=chat_pb2.EvalRunStarted(suite=suite, model=model, total=line["total"])
        )
    return chat_pb2.EvalProgress(
        item=chat_pb2.EvalItemDone(
            done=line["done"], total=line["total"], item_id=line["item"], error=line["error"]
        )
    )


def _summary(finished: dict) -> chat_pb2.EvalSummary:
    """The results' summary, named as the copy in the model's evals/ (empty name when the
    model has no folder there: a model loaded from a hub id keeps its runs on disk only)."""
    copy = finished["model_copy"]
    summary = eval_files.read_summary(Path(copy or finished["results"]))
    if summary is None:
        raise RequestError(
            grpc.StatusCode.INTERNAL, f"the run wrote no readable results ({finished})"
        )
    summary.name = Path(copy).name if copy else ""
    return summary


def _failure(code: int, errors: deque[str]) -> RequestError:
    message = errors[-1].removeprefix("error: ") if errors else "no message"
    if code == CANNOT_RUN:
        return RequestError(grpc.StatusCode.FAILED_PRECONDITION, message)
    return RequestError(
        grpc.StatusCode.INTERNAL, f"the eval run failed (exit status {code}): {message}"
    )


def _last_line(text: bytes) -> str:
    lines = [line for line in text.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


async def _tail(stream: asyncio.StreamReader, lines: deque[str]) -> None:
    """Keep the last non-empty lines of `stream` (tqdm redraws with carriage returns)."""
    pending = ""
    while chunk := await stream.read(65536):
        *complete, pending = (
            (pending + chunk.decode(errors="replace")).replace("\r", "\n").split("\n")
        )
        lines.extend(line for line in complete if line.strip())
    if pending.strip():
        lines.append(pending)


async def _stop(child: asyncio.subprocess.Process) -> None:
    child.terminate()
    try:
        await asyncio.wait_for(child.wait(), KILL_AFTER)
    except TimeoutError:
        child.kill()
        await child.wait()
