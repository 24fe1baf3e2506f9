"""The API keys file and `python -m backend keys`: salted hashes, roles, limits, revocation,
expiry, and a running reader seeing edits."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta

import pytest

from backend.keys import KeysError, KeyStore, Limits, add_key, revoke_key
from tests.helpers import run_backend


def test_cli_adds_lists_and_revokes(tmp_path):
    path = tmp_path / "keys.yaml"
    added = run_backend("keys", "--keys-file", str(path), "add", "ci", "--role", "admin",
                        "--requests-per-minute", "7", "--tokens-per-minute", "0")  # fmt: skip
    assert added.returncode == 0, added.stderr
    plain = next(line for line in added.stdout.splitlines() if line.startswith("cf_"))
    text = path.read_text()
    assert plain not in text and plain.split("_", 2)[2] not in text  # only the hash is stored
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    entry = KeyStore(path).verify(plain)
    assert (entry.name, entry.role, entry.limits) == ("ci", "admin", Limits(7, 4, 0))

    listed = run_backend("keys", "--keys-file", str(path), "list")
    assert f"{entry.id}  ci" in listed.stdout and "active" in listed.stdout
    revoked = run_backend("keys", "--keys-file", str(path), "revoke", "ci")
    assert revoked.returncode == 0 and f"revoked key {entry.id}" in revoked.stdout
    with pytest.raises(KeysError, match=f"API key {entry.id} \\(ci\\) was revoked on"):
        KeyStore(path).verify(plain)
    assert "revoked 20" in run_backend("keys", "--keys-file", str(path), "list").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "x", "--role", "root"], "--role 'root': choose one of user, admin"),
        (["add", "bad name"], "key name 'bad name'"),
        (["add", "x", "--requests-per-minute", "-1"], "requests_per_minute must be a whole"),
        (["revoke", "nobody"], "no key with id or name 'nobody'"),
    ],
)
def test_cli_errors_say_what_to_fix(tmp_path, args, message):
    result = run_backend("keys", "--keys-file", str(tmp_path / "keys.yaml"), *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_wrong_malformed_and_expired_keys_are_refused(tmp_path):
    path = tmp_path / "keys.yaml"
    plain, entry = add_key(path, "temp", expires_days=1)
    store = KeyStore(path)
    assert store.verify(plain).id == entry.id
    with pytest.raises(KeysError, match="unknown API key"):
        store.verify(plain[:-4] + "AAAA")
    with pytest.raises(KeysError, match="malformed API key"):
        store.verify("hunter2")
    later = datetime.now(UTC) + timedelta(days=2)
    with pytest.raises(KeysError, match=f"API key {entry.id} \\(temp\\) expired on"):
        store.verify(plain, now=later)


def test_a_running_store_sees_revocations_and_new_keys(tmp_path):
    path = tmp_path / "keys.yaml"
    first, _ = add_key(path, "one")
    store = KeyStore(path)
    second, _ = add_key(path, "two", role="admin")
    revoke_key(path, "one")
    store.refresh()
    assert store.verify(second).role == "admin"
    with pytest.raises(KeysError, match="was revoked"):
        store.verify(first)


def test_bad_files_are_named(tmp_path):
    with pytest.raises(KeysError, match="does not exist; create it with"):
        KeyStore(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("keys:\n  - id: abcdef01\n    role: user\n")
    with pytest.raises(KeysError, match="entry 1"):
        KeyStore(bad)
