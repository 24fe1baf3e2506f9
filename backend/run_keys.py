"""Admin keys that live in the server's memory, one per eval run it starts (RunEval).

Design decisions:
- A suite that the server runs (backend/eval_runs.py) is a child process calling this
  server back like any client, so behind API keys it needs a key, and an admin one: it
  stores its results through RecordEval. The server holds only hashes of the keys in the
  keys file, so it cannot lend one; it issues a key of its own for the run instead and
  revokes it when the run ends. Such a key is never written anywhere, and it travels to
  the child in its environment (`$CHATFORGE_API_KEY`), not on a command line that `ps`
  shows.
- A run key is `cfrun_<secret>` (32 random bytes), a shape the keys file never holds, and
  is compared in constant time. It carries no rate limits: the run is the admin's own
  request, admitted once when RunEval was called.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime

from backend.keys import ApiKey, Limits

PREFIX = "cfrun_"
_UNLIMITED = Limits(0, 0, 0)


class RunKeys:
    """The run keys in force."""

    def __init__(self) -> None:
        self._live: dict[str, ApiKey] = {}

    def issue(self, run: str) -> str:
        """A new admin key for one run (`run` names it in logs); revoke it when done."""
        secret = PREFIX + secrets.token_urlsafe(32)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        self._live[secret] = ApiKey(
            id="run", name=run, role="admin", salt="", hash="", created=created,
            limits=_UNLIMITED,
        )  # fmt: skip
        return secret

    def revoke(self, secret: str) -> None:
        self._live.pop(secret, None)

    def verify(self, presented: str) -> ApiKey | None:
        """The run key's entry, or None when `presented` is not a run key in force."""
        if not presented.startswith(PREFIX):
            return None
        for secret, entry in list(self._live.items()):
            if hmac.compare_digest(secret.encode(), presented.encode()):
                return entry
        return None
