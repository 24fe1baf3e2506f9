"""The UI's users file: names, scrypt password hashes and roles; `python -m ui.users`.

Design decisions:
- Passwords are people's, so they are hashed slowly (scrypt, n=2**14, r=8, p=1: about
  50 ms and 16 MiB a check) with a random salt each, stored as
  `scrypt$n$r$p$salt$hash` so the cost can be raised later without breaking old entries.
- The file is YAML (`users: {alice: {password: ..., role: admin}}`), written owner-only
  through a temporary file and a rename. `python -m ui.users add NAME` reads the password
  from the terminal (twice) or from standard input when piped, never from a flag.
- Roles: `admin` may run eval suites (which write results on the server and into the
  daily log), `user` may chat and read. Without a users file the UI is a local tool and
  every visitor acts as admin; `--share` refuses that (see ui/__main__.py).
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import hmac
import os
import secrets
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

ROLES = ("user", "admin")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class UsersError(ValueError):
    """A users file or an entry that cannot be used; the message says what to fix."""


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    n, r, p = _SCRYPT["n"], _SCRYPT["r"], _SCRYPT["p"]
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def check_password(stored: str, password: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        computed = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p)
        )
    except ValueError:
        return False
    return scheme == "scrypt" and hmac.compare_digest(computed.hex(), digest)


@dataclass(frozen=True)
class User:
    password: str  # the hash
    role: str


class Users:
    """Who may sign in, and with which role."""

    def __init__(self, users: dict[str, User]) -> None:
        self.users = users

    @classmethod
    def load(cls, path: Path | str) -> Users:
        path = Path(path).expanduser()
        if not path.is_file():
            raise UsersError(
                f"users file {path} does not exist; create it with "
                f"`python -m ui.users add NAME --auth-file {path}`"
            )
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise UsersError(f"users file {path} is not valid YAML: {error}") from None
        entries = data.get("users") if isinstance(data, dict) else None
        if not isinstance(entries, dict) or not entries:
            raise UsersError(f"users file {path}: expected `users:` mapping names to entries")
        users = {}
        for name, entry in entries.items():
            if not isinstance(entry, dict) or not str(entry.get("password", "")).startswith(
                "scrypt$"
            ):
                raise UsersError(
                    f"users file {path}, user {name!r}: needs a `password:` hash made by "
                    "`python -m ui.users add` (plain passwords are not accepted)"
                )
            role = entry.get("role", "user")
            if role not in ROLES:
                raise UsersError(f"users file {path}, user {name!r}: role must be one of {ROLES}")
            users[str(name)] = User(entry["password"], role)
        return cls(users)

    def authenticate(self, name: str, password: str) -> bool:
        """Gradio's `auth=` callable: True when the name and password match."""
        user = self.users.get(name)
        return user is not None and check_password(user.password, password)

    def role(self, name: str | None) -> str | None:
        user = self.users.get(name or "")
        return user.role if user else None

    def save(self, path: Path | str) -> None:
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "users": {n: {"password": u.password, "role": u.role} for n, u in self.users.items()}
        }
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "w") as out:
            yaml.safe_dump(data, out, sort_keys=False)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)


def role_of(users: Users | None, username: str | None) -> str:
    """The role of a signed-in user; everyone is admin of a UI without a login (local)."""
    if users is None:
        return "admin"
    return users.role(username) or "user"


def _read_password() -> str:
    if not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise UsersError("the two passwords differ")
    if len(password) < 8:
        raise UsersError("a password needs at least 8 characters")
    return password


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ui.users", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--auth-file", default="users.yaml", help="users file (default %(default)s)"
    )
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a user or set a password (read from the terminal)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="user")
    remove = actions.add_parser("remove", help="remove a user")
    remove.add_argument("name")
    actions.add_parser("list", help="names and roles")
    args = parser.parse_args(argv)
    path = Path(args.auth_file)
    try:
        users = Users.load(path) if path.exists() else Users({})
        if args.action == "add":
            users.users[args.name] = User(hash_password(_read_password()), args.role)
            users.save(path)
            print(f"user {args.name} ({args.role}) saved in {path}")
        elif args.action == "remove":
            if users.users.pop(args.name, None) is None:
                raise UsersError(f"no user {args.name!r} in {path}")
            users.save(path)
            print(f"user {args.name} removed from {path}")
        else:
            for name, user in users.users.items():
                print(f"{name}\t{user.role}")
    except UsersError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
