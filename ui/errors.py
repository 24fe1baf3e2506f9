"""Turn what can go wrong between the UI and the backend into a line a person can act on.

Design decisions:
- Every tab shows backend failures the same way: the gRPC status code name and the
  server's own message (which names the field and the allowed range), never a traceback.
- UNAVAILABLE while nothing answers almost always means the backend is not running or is
  still loading its models, so the line adds where the UI looks for it and how to start it;
  not when the server itself says a collection is still being built, which explains itself.
- The client's own deadline while retrying surfaces as a TimeoutError, not an RpcError;
  it is reported as DEADLINE_EXCEEDED so the user sees one vocabulary.
"""

from __future__ import annotations

import grpc

BACKEND_ERRORS = (grpc.RpcError, TimeoutError)


def describe_error(error: grpc.RpcError | TimeoutError, target: str) -> str:
    """A one-paragraph Markdown description of a failed backend call."""
    if isinstance(error, TimeoutError):
        code, details = grpc.StatusCode.DEADLINE_EXCEEDED, str(error)
    else:  # every RpcError raised by a call is also a grpc.Call
        code, details = error.code(), error.details() or "no details"
    text = f"**Backend error {code.name}**: {details}"
    if code == grpc.StatusCode.UNAVAILABLE and "being built" not in details:
        text += (
            f" (is the backend running at `{target}`? Start it with "
            "`python -m backend serve`, or point the UI at it with `--backend HOST:PORT`.)"
        )
    return text
