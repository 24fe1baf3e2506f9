"""Free ports for child processes, chosen in the parent, that no one else can take first.

Design decisions:
- A port is reserved by a socket bound to port 0 with SO_REUSEADDR and never listened on,
  held open until the child serves. While it is held, Linux gives that port to no other
  `bind(("", 0))` (the kernel skips ports in use when it picks one), so two ports picked
  one after the other, here or in any other process, never collide; asking the OS for a
  port and closing the socket at once (the usual `free_port()`) leaves a window in which
  the next pick can return the same port.
- The child binds the port itself with SO_REUSEADDR (uvicorn, `http.server`, gRPC and Go
  servers all do), which Linux allows beside a socket that is not listening; the parent
  closes its socket once the child answers, and the port is the child's alone.
"""

from __future__ import annotations

import socket


class PortReservation:
    """A port on `host` held for a child until `release()` (also on leaving a `with`)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._socket: socket.socket | None = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, 0))
        self.port: int = self._socket.getsockname()[1]

    def release(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> PortReservation:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
