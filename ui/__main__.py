"""`python -m ui`: serve the chat app in the browser, talking to a gRPC backend.

Design decisions:
- Defaults come from the environment where a platform sets them: `$PORT` (Cloud Run)
  and `$CHATFORGE_BACKEND` (where the backend lives); flags override both.
- Arguments are checked before Gradio is imported, so a typo costs no start-up time and
  ends in one line saying what to fix, not a traceback.
- Settings come from flags, the environment or `.env` (ui/settings.py); the API key the UI
  sends to the backend only from the environment.
- `--auth-file users.yaml` turns on Gradio's login (ui/users.py); `--share` refuses to
  start without one unless `--public` says so explicitly.
- `--share` uses Gradio's tunnel. Without internet access Gradio prints its own reason and
  carries on locally; we add one plain line saying the app is local only, and keep serving.
- SIGINT and SIGTERM (Ctrl-C, `docker stop`, `make demo` shutting down) close the server
  and exit 0; open chat streams end with the process, which cancels their gRPC calls.
- Logs, traces and metrics as every process of the project does them (telemetry/): the
  logging flags, the `OTEL_*` variables, and the UI's own metrics on `--metrics-port`
  (a setting like the others; 0 turns the endpoint off).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from backend.settings import (
    ClientSettings,
    SettingsError,
    add_client_flags,
    env_name,
    flag_name,
    load_settings,
)
from telemetry.logs import configure_from_args, logging_arguments
from telemetry.tracing import configure_tracing
from ui.settings import UiSettings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ui", description=__doc__.split("\n")[0], parents=[logging_arguments()]
    )
    # Every flag defaults to None: UiSettings holds the defaults and reads the environment.
    for field, info in UiSettings.model_fields.items():
        variable = env_name(UiSettings, field)
        if info.annotation is bool:
            parser.add_argument(
                flag_name(field), action="store_true", default=None, help=info.description
            )
        else:
            parser.add_argument(
                flag_name(field),
                default=None,
                help=f"{info.description} (default: ${variable}, else {info.default})",
            )
    add_client_flags(parser)
    return parser


def parse_all(
    argv: list[str] | None = None,
) -> tuple[UiSettings, ClientSettings, argparse.Namespace]:
    """The UI's settings, how it reaches the backend, and the flags (the logging flags are
    read from them); exits 2 naming a bad setting."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return load_settings(UiSettings, args), load_settings(ClientSettings, args), args
    except SettingsError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> int:
    args, client_settings, flags = parse_all(argv)
    configure_from_args(flags)
    configure_tracing("chatforge-ui")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from ui.app import build_app
    from ui.observe import METRICS
    from ui.users import Users, UsersError

    try:
        users = Users.load(args.auth_file) if args.auth_file else None
    except UsersError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    app = build_app(args.backend, users, client_settings)
    try:
        app.launch(
            server_name=args.host,
            server_port=args.port,
            share=args.share,
            auth=users.authenticate if users else None,
            auth_message="chatforge: sign in with the name and password you were given",
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
    if args.metrics_port:
        try:
            metrics_server, _ = METRICS.serve(args.metrics_port, args.host)
        except OSError:
            app.close()
            print(
                f"error: cannot serve metrics on {args.host}:{args.metrics_port}: the port is "
                "taken or not allowed; choose another with --metrics-port (0: off)",
                file=sys.stderr,
            )
            return 1
        logging.getLogger("chatforge.ui").info(
            "metrics on %s:%d", args.host, metrics_server.server_port
        )
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
