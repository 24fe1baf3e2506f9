"""`make demo`: the backend with the default model and the chat UI, together, until Ctrl-C.

Design decisions:
- GGUF models in the registry are converted first, in the foreground, with their progress
  bar in the terminal (the first run on a fresh machine spends most of its time there);
  later runs find the converted checkpoint and go straight on.
- The documentation collection (`pydocs` by default) is found in
  $CHATFORGE_HOME/collections once built. On the first run it is built in the background
  (`backend.retrieval.ingest_process`: `python -m backend ingest` at a lower priority,
  its progress in a log file named on screen and summed up in the terminal now and then)
  while the backend and the UI start at once: embedding 25k chunks takes about a quarter
  of an hour on a 2-core CPU, and nobody should wait that long to chat. The backend is
  given the collection from the start; it answers UNAVAILABLE for it ("being built")
  until the ingest publishes it, then serves it without a restart. Stopping the demo
  stops the build too, and the next run resumes it where it stopped. `--docs none`
  skips retrieval, `--docs FOLDER` uses other pages.
- Both servers are child processes started by the project's launchers
  (`backend.launcher.BackendProcess`, `ui.launcher.UiProcess`), which wait on gRPC health
  and on the page answering, so the URL printed is one that works. The UI starts while the
  backend loads its models (it needs only the address), which saves its start-up time.
  Their logs go to files (named on screen), keeping the terminal for what the user needs.
  Each run writes into a folder of its own under `--log-dir` (`YYYYmmdd-HHMMSS`, created
  atomically, `-2`, `-3`, ... when taken), so a second demo never truncates the logs of one
  that is still running.
- Ports come from flags, then the environment (`CHATFORGE_GRPC_PORT`,
  `CHATFORGE_METRICS_PORT`, `CHATFORGE_UI_PORT`), then 50051, 9100 and 7860; 0 means any
  free port.
- Ctrl-C in a terminal sends SIGINT to every process of the group (the backend starts
  draining, the UI closes; the background build has its own group and is interrupted by
  this script); SIGTERM reaches this script alone, which passes it on to the backend. Both
  end in the same path: the build is interrupted (resumable), the UI is stopped (its open
  streams are cancelled), then the backend drains, and all are waited for, so nothing is
  left running. A SIGINT is taken to come from the terminal, so it is never passed on:
  the backend has it already, and a second one would stop it at once.
- The drain is not silent: the script says how many streams the backend waits for and
  for how long (`--grace`, passed to the backend, so the number shown is the one in
  force), then how many are left whenever that changes and every few seconds, reading
  the backend's own `chatforge_active_streams` metric. A second Ctrl-C (or SIGTERM) while
  it waits stops the backend at once, cancelling its streams. Signals never interrupt
  the stop path itself, so a second Ctrl-C cannot leave an orphan behind, and one that
  arrives while a child is being started takes effect once it is started and tracked
  (`Interrupts.deferred`): interrupted inside `subprocess.Popen`, the child would run on,
  unknown to the stop path.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from backend.client import ChatClient
from backend.gguf_convert import prepare_gguf
from backend.launcher import BackendError, BackendProcess
from backend.registry import DEFAULT_CONFIG, RegistryError, load_registry
from backend.retrieval.index import current_folder
from backend.retrieval.ingest import default_index_dir
from backend.retrieval.ingest_process import IngestProcess
from ui.launcher import UiError, UiProcess

ROOT = Path(__file__).resolve().parent.parent
PROGRESS_EVERY = 30.0  # seconds between two progress lines of the background build
DRAIN_PROGRESS_EVERY = 5.0  # seconds between two "still running" lines while stopping
STOP_MARGIN = 30.0  # seconds past the grace period before a backend that hangs is killed


@dataclass(frozen=True)
class Docs:
    """The demo's documentation collection: where its pages come from and its index goes."""

    name: str
    source: str
    index_dir: Path
    built: bool  # a version has been published


def _env_port(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    if not value.isdigit() or int(value) > 65535:
        sys.exit(f"error: ${name}={value!r} is not a port number (0-65535; 0 = any free port)")
    return int(value)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="model registry YAML")
    parser.add_argument("--host", default="127.0.0.1", help="interface both servers listen on")
    parser.add_argument("--grpc-port", type=int, default=_env_port("CHATFORGE_GRPC_PORT", 50051))
    parser.add_argument(
        "--metrics-port", type=int, default=_env_port("CHATFORGE_METRICS_PORT", 9100)
    )
    parser.add_argument(
        "--http-port",
        type=int,
        default=_env_port("CHATFORGE_HTTP_PORT", 8000),
        help="the OpenAI-compatible HTTP API (http://HOST:PORT/v1)",
    )
    parser.add_argument("--ui-port", type=int, default=_env_port("CHATFORGE_UI_PORT", 7860))
    parser.add_argument(
        "--log-dir", default=str(ROOT / "runs" / "demo"), help="a folder per run of logs, in here"
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="seconds the backend lets open streams finish on Ctrl-C (a second Ctrl-C: none)",
    )
    parser.add_argument(
        "--docs",
        default="pydocs",
        help="pages to answer from with retrieval: pydocs, a folder of pages, or none",
    )
    parser.add_argument(
        "--docs-index", help="their index folder (default $CHATFORGE_HOME/collections/NAME)"
    )
    return parser.parse_args(argv)


def docs_collection(args: argparse.Namespace) -> Docs | None:
    """The demo's documentation collection, or None with `--docs none`."""
    if args.docs == "none":
        return None
    name = "pydocs" if args.docs == "pydocs" else Path(args.docs).resolve().name
    index_dir = Path(args.docs_index) if args.docs_index else default_index_dir(name)
    return Docs(name, args.docs, index_dir, built=current_folder(index_dir) is not None)


def start_docs_build(docs: Docs, log_dir: Path) -> IngestProcess:
    """Build the collection in the background; the backend serves it once published."""
    docs.index_dir.mkdir(parents=True, exist_ok=True)  # the backend's "being built" folder
    build = IngestProcess(docs.source, docs.name, docs.index_dir, log_dir / "ingest.log")
    build.start()
    print(
        f"docs: building collection {docs.name} from {docs.source} in the background (first "
        f"run only; chat works meanwhile, answering from documents once it is ready; an "
        f"interrupted build resumes; --docs none skips); progress: {build.log_path}",
        flush=True,
    )
    return build


def report_docs_build(build: IngestProcess, docs: Docs, target: str) -> None:
    """Say how the finished build went; on success, have the server load the collection."""
    if build.returncode != 0:
        print(
            f"docs: building collection {docs.name} failed (exit code {build.returncode}); "
            f"chat works without documents; the next `make demo` resumes the build. The end "
            f"of {build.log_path}:\n{build.log_tail()}",
            flush=True,
        )
        return
    try:  # listing the collections loads the published index into the server
        with ChatClient(target) as client:
            listed = {c.name: c for c in client.list_collections().collections}
    except grpc.RpcError as error:
        print(f"docs: collection {docs.name} is built; the server says {error.code().name}")
        return
    collection = listed[docs.name]
    print(
        f"docs: collection {docs.name} is ready ({collection.documents} documents, "
        f"{collection.chunks} chunks); tick 'Answer from documents' in the chat",
        flush=True,
    )


class Interrupts:
    """SIGINT and SIGTERM raise KeyboardInterrupt, except while a child is being started;
    once stopping, they only record that the user asked again."""

    def __init__(self) -> None:
        self._deferring = False
        self._pending = False
        self.first: int | None = None  # the signal that stopped the demo
        self.again: int | None = None  # one that came while stopping

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: it may arrive ignored
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.first = self.first or signum
        if self._deferring:
            self._pending = True
        else:
            raise KeyboardInterrupt

    def stopping(self) -> None:
        """From now on a signal does not interrupt the stop path; it asks to stop now."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._record_again)

    def _record_again(self, signum, frame) -> None:
        self.again = self.again or signum

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold an interrupt until the child started here is tracked; a child that died of
        the same Ctrl-C (the terminal signals the whole group) counts as interrupted."""
        self._deferring = True
        try:
            yield
        except Exception:
            if not self._pending:
                raise
        finally:
            self._deferring = False
        if self._pending:
            raise KeyboardInterrupt


def run_log_dir(root: Path) -> Path:
    """A new folder for this run's logs; mkdir is atomic, so two runs never share one."""
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    for attempt in range(1, 1000):
        folder = root / (stamp if attempt == 1 else f"{stamp}-{attempt}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise OSError(f"{root}: no free log folder for {stamp}")


def run(args: argparse.Namespace, interrupts: Interrupts) -> int:
    log_dir = run_log_dir(Path(args.log_dir))
    registry = load_registry(args.config)
    for spec in registry.models.values():
        if spec.gguf:
            print(f"model {spec.name}: {prepare_gguf(spec.gguf)}", flush=True)
    docs = docs_collection(args)
    backend = BackendProcess(
        args.config,
        host=args.host,
        port=args.grpc_port,
        metrics_port=args.metrics_port,
        http_port=args.http_port,
        extra_args=["--grace", str(args.grace)]
        + (["--collection", f"{docs.name}={docs.index_dir}"] if docs else []),
        log_path=log_dir / "backend.log",
    )
    ui: UiProcess | None = None
    build: IngestProcess | None = None
    try:
        if docs is not None and not docs.built:
            with interrupts.deferred():
                build = start_docs_build(docs, log_dir)
        elif docs is not None:
            print(f"docs: collection {docs.name} from {docs.index_dir}", flush=True)
        names = ", ".join(registry.models)
        print(f"backend: starting with {names} (log: {backend.log_path})", flush=True)
        with interrupts.deferred():  # bound, still loading: start the UI meanwhile
            backend.start(wait_serving=False)
        print(f"backend: OpenAI-compatible API at {backend.http_url}/v1", flush=True)
        ui = UiProcess(
            backend.target, host=args.host, port=args.ui_port, log_path=log_dir / "ui.log"
        )
        print(f"ui: starting (log: {ui.log_path})", flush=True)
        with interrupts.deferred():
            ui.start()
        print("backend: waiting until its models are loaded…", flush=True)
        backend.wait_serving(timeout=600)
        print(f"backend: serving gRPC on {backend.target}, metrics on {backend.metrics_url}")
        print(f"\n  chatforge is ready: open {ui.url}\n  Ctrl-C stops it.\n", flush=True)
        shown, shown_at = "", time.monotonic()
        while True:
            for name, child in (("backend", backend), ("ui", ui)):
                if child.process.poll() is not None:
                    code = child.process.returncode
                    print(f"error: the {name} exited with code {code}:\n{child.log_tail()}")
                    return 1
            if build is not None and build.returncode is not None:
                report_docs_build(build, docs, backend.target)
                build = None
            elif build is not None and time.monotonic() - shown_at >= PROGRESS_EVERY:
                progress, shown_at = build.progress(), time.monotonic()
                if progress and progress != shown:
                    print(f"docs: {progress}", flush=True)
                    shown = progress
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
        return 0
    finally:
        interrupts.stopping()
        if build is not None and build.returncode is None:
            build.stop()
            print("stopped the documents build; the next run resumes it.", flush=True)
        if ui is not None:
            ui.stop()
        stop_backend(backend, interrupts, args.grace)
        print("stopped the UI and the backend.", flush=True)


def _streams(count: int) -> str:
    return f"{count} stream" + ("" if count == 1 else "s")


def stop_backend(backend: BackendProcess, interrupts: Interrupts, grace: float) -> None:
    """Drain the backend, saying what it waits for and how it goes; a second Ctrl-C (or
    SIGTERM) stops it at once. A SIGINT reached the backend from the terminal already."""
    process = backend.process
    if process is None or process.poll() is not None:
        return
    if interrupts.first != signal.SIGINT:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    streams = shown = 0
    shown_at, stopping_now = 0.0, False
    while process.poll() is None:
        now = time.monotonic()
        if interrupts.again is not None and not stopping_now:
            # The count of the last poll: the backend may be cancelling them already.
            stopping_now = True
            print(f"backend: stopping now, cancelling {_streams(streams)}", flush=True)
            if interrupts.again != signal.SIGINT:
                process.send_signal(signal.SIGINT)
        elif not stopping_now:
            streams = backend.active_streams() or 0
            if streams and (streams != shown or now - shown_at >= DRAIN_PROGRESS_EVERY):
                if not shown:
                    waiting = f"waiting up to {grace:g} s for {_streams(streams)} to finish"
                else:
                    left = max(deadline - now, 0)
                    waiting = f"{_streams(streams)} still running, {left:.0f} s left"
                print(f"backend: {waiting}; Ctrl-C again to stop now", flush=True)
                shown, shown_at = streams, now
        if now > deadline + STOP_MARGIN:
            print("backend: it did not stop; killing it", flush=True)
            process.kill()
            break
        time.sleep(0.2)
    process.wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    interrupts = Interrupts()
    interrupts.install()
    try:
        return run(args, interrupts)
    except (RegistryError, BackendError, UiError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        if isinstance(error, BackendError | UiError):
            print(
                "hint: a port may be taken; choose others with --grpc-port, --metrics-port "
                "and --ui-port (or CHATFORGE_GRPC_PORT, CHATFORGE_METRICS_PORT, "
                "CHATFORGE_UI_PORT)",
                file=sys.stderr,
            )
        return 1
    except KeyboardInterrupt:  # during the model conversion, before any server started
        print("\ninterrupted; a partial model conversion is redone next time.")
        return 130


if __name__ == "__main__":
    sys.exit(main())
