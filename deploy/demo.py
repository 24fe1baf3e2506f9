"""`make demo`: the backend with the default model and the chat UI, together, until Ctrl-C.

Design decisions:
- GGUF models in the registry are converted first, in the foreground, with their progress
  bar in the terminal (the first run on a fresh machine spends most of its time there);
  later runs find the converted checkpoint and go straight on.
- The documentation collection (`pydocs` by default) is built on the first run with
  `python -m backend ingest`, in the foreground with its progress bars, and found in
  $CHATFORGE_HOME/collections afterwards; an interrupted build resumes where it stopped.
  `--docs none` skips retrieval, `--docs FOLDER` uses other pages.
- Both servers are child processes started by the project's launchers
  (`backend.launcher.BackendProcess`, `ui.launcher.UiProcess`), which wait on gRPC health
  and on the page answering, so the URL printed is one that works. The UI starts while the
  backend loads its models (it needs only the address), which saves its start-up time.
  Their logs go to files (named on screen), keeping the terminal for what the user needs.
- Ports come from flags, then the environment (`CHATFORGE_GRPC_PORT`,
  `CHATFORGE_METRICS_PORT`, `CHATFORGE_UI_PORT`), then 50051, 9100 and 7860; 0 means any
  free port.
- Ctrl-C in a terminal sends SIGINT to every process of the group (the backend starts
  draining, the UI closes); SIGTERM reaches this script alone. Both end in the same path:
  the UI is stopped first (its open streams are cancelled), then the backend drains, and
  both are waited for, so nothing is left running. Signals that arrive while stopping are
  ignored so that a second Ctrl-C cannot leave an orphan behind.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from backend.gguf_convert import prepare_gguf
from backend.launcher import BackendError, BackendProcess
from backend.registry import DEFAULT_CONFIG, RegistryError, load_registry
from backend.retrieval.index import current_folder
from backend.retrieval.ingest import default_index_dir
from ui.launcher import UiError, UiProcess

ROOT = Path(__file__).resolve().parent.parent


class DocsError(RuntimeError):
    """The documentation collection could not be built."""


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
    parser.add_argument("--ui-port", type=int, default=_env_port("CHATFORGE_UI_PORT", 7860))
    parser.add_argument("--log-dir", default=str(ROOT / "runs" / "demo"), help="server logs")
    parser.add_argument(
        "--docs",
        default="pydocs",
        help="pages to answer from with retrieval: pydocs, a folder of pages, or none",
    )
    parser.add_argument(
        "--docs-index", help="their index folder (default $CHATFORGE_HOME/collections/NAME)"
    )
    return parser.parse_args(argv)


def docs_collection(args: argparse.Namespace) -> tuple[str, Path] | None:
    """(name, index folder) of the demo's documentation collection, built if missing."""
    if args.docs == "none":
        return None
    name = "pydocs" if args.docs == "pydocs" else Path(args.docs).resolve().name
    index_dir = Path(args.docs_index) if args.docs_index else default_index_dir(name)
    if current_folder(index_dir) is not None:
        print(f"docs: collection {name} from {index_dir}", flush=True)
        return name, index_dir
    print(
        f"docs: building collection {name} from {args.docs} into {index_dir} (first run only; "
        "embedding takes a while on a CPU; an interrupted build resumes; --docs none skips)",
        flush=True,
    )
    command = [sys.executable, "-m", "backend", "ingest", args.docs, "--collection", name]
    done = subprocess.run([*command, "--index-dir", str(index_dir)])
    if done.returncode != 0:
        raise DocsError(f"building the {name} collection failed (its message is above)")
    return name, index_dir


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
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
        extra_args=["--collection", f"{docs[0]}={docs[1]}"] if docs else [],
        log_path=log_dir / "backend.log",
    )
    ui: UiProcess | None = None
    try:
        names = ", ".join(registry.models)
        print(f"backend: starting with {names} (log: {backend.log_path})", flush=True)
        backend.start(wait_serving=False)  # bound, still loading: start the UI meanwhile
        ui = UiProcess(
            backend.target, host=args.host, port=args.ui_port, log_path=log_dir / "ui.log"
        )
        print(f"ui: starting (log: {ui.log_path})", flush=True)
        ui.start()
        print("backend: waiting until its models are loaded…", flush=True)
        backend.wait_serving(timeout=600)
        print(f"backend: serving gRPC on {backend.target}, metrics on {backend.metrics_url}")
        print(f"\n  chatforge is ready: open {ui.url}\n  Ctrl-C stops both.\n", flush=True)
        while True:
            for name, child in (("backend", backend), ("ui", ui)):
                if child.process.poll() is not None:
                    code = child.process.returncode
                    print(f"error: the {name} exited with code {code}:\n{child.log_tail()}")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        if ui is not None:
            ui.stop()
        backend.stop()
        print("stopped the UI and the backend.", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: it may arrive ignored
        signal.signal(sig, _raise_interrupt)
    try:
        return run(args)
    except (RegistryError, BackendError, UiError, DocsError, FileNotFoundError) as error:
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
        print(
            "\ninterrupted; a partial model conversion is redone next time, and a documents "
            "build resumes where it stopped."
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
