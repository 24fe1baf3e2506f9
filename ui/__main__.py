"""`python -m ui`: serve the chat app in the browser, talking to a gRPC backend.

Design decisions:
- Defaults come from the environment where a platform sets them: `$PORT` (Cloud Run)
  and `$CHATFORGE_BACKEND` (where the backend lives); flags override both.
- Arguments are checked before Gradio is imported, so a typo costs no start-up time and
  ends in one line saying what to fix, not a traceback.
- `--share` uses Gradio's tunnel. Without internet access Gradio prints its own reason and
  carries on locally; we add one plain line saying the app is local only, and keep serving.
- SIGINT and SIGTERM (Ctrl-C, `docker stop`, `make demo` shutting down) close the server
  and exit 0; open chat streams end with the process, which cancels their gRPC calls.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading

DEFAULT_BACKEND = "127.0.0.1:50051"
DEFAULT_PORT = 7860
_TARGET = re.compile(r"^\S+:\d{1,5}$")


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return int(text)


def _backend(text: str) -> str:
    if not _TARGET.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} (from --backend or $CHATFORGE_BACKEND) is not HOST:PORT, "
            f"e.g. {DEFAULT_BACKEND}"
        )
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ui", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--backend",
        type=_backend,
        default=os.environ.get("CHATFORGE_BACKEND", DEFAULT_BACKEND),
        help="gRPC backend HOST:PORT (default: $CHATFORGE_BACKEND or %(default)s)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to serve on (0.0.0.0 in containers)"
    )
    parser.add_argument(
        "--port", type=_port, default=None, help=f"HTTP port (default: $PORT or {DEFAULT_PORT})"
    )
    parser.add_argument("--share", action="store_true", help="also open a public Gradio link")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.port is None:
        try:
            args.port = _port(os.environ.get("PORT", str(DEFAULT_PORT)))
        except argparse.ArgumentTypeError as error:
            parser.error(f"$PORT: {error}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from ui.app import build_app

    app = build_app(args.backend)
    try:
        app.launch(
            server_name=args.host,
            server_port=args.port,
            share=args.share,
            prevent_thread_lock=True,
            quiet=True,
        )
    except OSError:  # Gradio's message speaks of launch() parameters; ours of flags
        print(
            f"error: cannot serve on {args.host}:{args.port}: the port is taken or not "
            "allowed; choose another with --port (or $PORT)",
            file=sys.stderr,
        )
        return 1
    print(f"chatforge UI at {app.local_url} (backend {args.backend}); Ctrl-C stops it", flush=True)
    if args.share:
        if app.share_url:
            print(f"public link: {app.share_url}", flush=True)
        else:
            print(
                "--share: could not open a public link (Gradio's share tunnel is not "
                f"reachable from here); still serving locally at {app.local_url}",
                flush=True,
            )
    stop.wait()
    app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
