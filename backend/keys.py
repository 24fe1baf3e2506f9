"""API keys: a YAML file of salted hashes with a role and rate limits each.

Design decisions:
- A key is `cf_<id>_<secret>`. The id is public (it names the key in `keys list`, in logs
  and in rate-limit messages) and finds the entry in one lookup; only the secret is
  hashed. The plain key is printed once by `keys add` and stored nowhere.
- Secrets are 32 random bytes, so a salted SHA-256 is enough: a slow password hash
  (scrypt) guards guessable passwords, and would cost tens of milliseconds on every call
  here for nothing. Hashes are compared in constant time.
- Revocation keeps the entry (with its date), so a revoked key is refused with a message
  that says so instead of "unknown key", and `keys list` keeps the history.
- The server re-reads the file when its modification time or size changes, so `keys add`
  and `keys revoke` take effect on a running server at its next call, with no restart.
  Writes go through a temporary file and a rename, so a reader never sees half a file.
- The file holds no plain secret, but it is still written owner-only (0600).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tempfile
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

ROLES = ("user", "admin")
_KEY = re.compile(r"^cf_([0-9a-f]{8})_([0-9A-Za-z_-]{20,})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class KeysError(ValueError):
    """A keys file or a key that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Limits:
    """Per-key rate limits; 0 means unlimited."""

    requests_per_minute: int = 120
    concurrent_streams: int = 4
    tokens_per_minute: int = 20_000

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 0:
                raise KeysError(f"limit {name} must be a whole number >= 0, not {value!r}")


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    role: str
    salt: str
    hash: str
    created: str
    expires: str | None = None
    revoked: str | None = None
    limits: Limits = field(default_factory=Limits)

    def problem(self, now: datetime) -> str | None:
        """Why this key is refused now, or None if it is valid."""
        if self.revoked:
            return f"API key {self.id} ({self.name}) was revoked on {self.revoked}"
        if self.expires and datetime.fromisoformat(self.expires) <= now:
            return f"API key {self.id} ({self.name}) expired on {self.expires}"
        return None


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class KeyStore:
    """The keys of one file, re-read when the file changes."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        self.keys: dict[str, ApiKey] = {}
        self._stamp: tuple[int, int] | None = None
        self.refresh()

    def refresh(self) -> None:
        """Re-read the file if it changed since the last read."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            raise KeysError(
                f"keys file {self.path} does not exist; create it with "
                f"`python -m backend keys add NAME --keys-file {self.path}`"
            ) from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self.keys = _parse(self.path)
            self._stamp = stamp

    def verify(self, key: str, now: datetime | None = None) -> ApiKey:
        """The entry of a presented key; KeysError says why it is refused."""
        match = _KEY.match(key)
        if not match:
            raise KeysError(
                "malformed API key: expected `cf_<id>_<secret>` as issued by `keys add`"
            )
        entry = self.keys.get(match[1])
        if entry is None or not hmac.compare_digest(entry.hash, _digest(entry.salt, match[2])):
            raise KeysError("unknown API key")
        problem = entry.problem(now or _now())
        if problem:
            raise KeysError(problem)
        return entry


def _parse(path: Path) -> dict[str, ApiKey]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise KeysError(f"keys file {path} is not valid YAML: {error}") from None
    entries = data.get("keys", []) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise KeysError(f"keys file {path}: expected a mapping with a `keys:` list")
    keys = {}
    for number, raw in enumerate(entries, 1):
        try:
            limits = Limits(**(raw.pop("limits", None) or {}))
            entry = ApiKey(**raw, limits=limits)
        except (TypeError, AttributeError) as error:
            raise KeysError(f"keys file {path}, entry {number}: {error}") from None
        except KeysError as error:
            raise KeysError(f"keys file {path}, entry {number}: {error}") from None
        if entry.role not in ROLES:
            raise KeysError(f"keys file {path}, key {entry.id}: role must be one of {ROLES}")
        keys[entry.id] = entry
    return keys


def _write(path: Path, keys: dict[str, ApiKey]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump({"keys": [asdict(k) for k in keys.values()]}, sort_keys=False)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def _load_for_edit(path: Path) -> dict[str, ApiKey]:
    return _parse(path) if path.exists() else {}


def add_key(
    path: Path | str,
    name: str,
    role: str = "user",
    limits: Limits | None = None,
    expires_days: float | None = None,
) -> tuple[str, ApiKey]:
    """Create a key; returns (the plain key, to show once, and its stored entry)."""
    path = Path(path).expanduser()
    if not _NAME.match(name):
        raise KeysError(f"key name {name!r}: use up to 64 letters, digits, '.', '_', '@', '-'")
    if role not in ROLES:
        raise KeysError(f"--role {role!r}: choose one of {', '.join(ROLES)}")
    if expires_days is not None and expires_days <= 0:
        raise KeysError(f"--expires-days must be positive, not {expires_days}")
    keys = _load_for_edit(path)
    key_id = secrets.token_hex(4)
    while key_id in keys:
        key_id = secrets.token_hex(4)
    secret, salt = secrets.token_urlsafe(32), secrets.token_hex(16)
    now = _now()
    entry = ApiKey(
        id=key_id,
        name=name,
        role=role,
        salt=salt,
        hash=_digest(salt, secret),
        created=now.isoformat(),
        expires=(now + timedelta(days=expires_days)).isoformat() if expires_days else None,
        limits=limits or Limits(),
    )
    keys[key_id] = entry
    _write(path, keys)
    return f"cf_{key_id}_{secret}", entry


def revoke_key(path: Path | str, key_id_or_name: str) -> ApiKey:
    """Mark a key (by id, or by name when that is unique) revoked; returns it."""
    path = Path(path).expanduser()
    keys = _load_for_edit(path)
    matches = [k for k in keys.values() if key_id_or_name in (k.id, k.name)]
    if not matches:
        raise KeysError(f"no key with id or name {key_id_or_name!r} in {path} (see `keys list`)")
    if len(matches) > 1:
        ids = ", ".join(k.id for k in matches)
        raise KeysError(f"several keys are named {key_id_or_name!r} ({ids}); revoke one by id")
    entry = replace(matches[0], revoked=matches[0].revoked or _now().isoformat())
    keys[entry.id] = entry
    _write(path, keys)
    return entry


def list_keys(path: Path | str) -> list[ApiKey]:
    return list(_parse(Path(path).expanduser()).values())
