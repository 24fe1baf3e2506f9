"""What the server's settings mean for its exposure: the start-up rule, TLS, the interceptor.

Design decisions:
- On loopback with no keys file the server runs open, so `make demo` and the tests stay
  one command. Any other address without keys refuses to start, saying why and what to
  do, unless `--insecure-open` says it is meant (a private network behind a firewall).
- TLS is the gRPC library's own (`ssl_server_credentials`); with `--tls-client-ca` the
  server requires and verifies client certificates (mutual TLS). The files are read at
  start-up, so a missing or unreadable one fails before the port opens.
- The server wiring asks this module for the interceptors and the credentials and knows
  nothing of keys or certificates itself.
"""

from __future__ import annotations

import ipaddress
import logging

import grpc

from backend.auth import AuthInterceptor
from backend.keys import KeyStore
from backend.run_keys import RunKeys
from backend.serve_settings import ServeSettings
from backend.settings import SettingsError

log = logging.getLogger("chatforge.security")


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost may resolve anywhere
        return False


def check_exposure(settings: ServeSettings) -> None:
    """Refuse to serve a reachable address with no API keys, unless told to."""
    if settings.keys_file or is_loopback(settings.host) or settings.insecure_open:
        return
    raise SettingsError(
        f"--host {settings.host} is reachable from other machines and no API keys are "
        "configured: anyone could chat and write eval results. Create keys with "
        "`python -m backend keys add NAME --keys-file keys.yaml` and pass --keys-file "
        "keys.yaml (or $CHATFORGE_KEYS_FILE), or pass --insecure-open to serve without "
        "keys on purpose"
    )


def server_credentials(settings: ServeSettings) -> grpc.ServerCredentials | None:
    """TLS credentials when a certificate is configured, else None (plaintext)."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    client_ca = settings.tls_client_ca
    return grpc.ssl_server_credentials(
        [(settings.tls_key.expanduser().read_bytes(), settings.tls_cert.expanduser().read_bytes())],
        root_certificates=client_ca.expanduser().read_bytes() if client_ca else None,
        require_client_auth=client_ca is not None,
    )


def interceptors(settings: ServeSettings, run_keys: RunKeys) -> list[grpc.aio.ServerInterceptor]:
    """The API key interceptor when a keys file is configured (KeysError if it is bad),
    accepting `run_keys` too (the server's own eval runs)."""
    if settings.keys_file is None:
        log.warning("no API keys file: the chat service is open to every caller")
        return []
    store = KeyStore(settings.keys_file)
    log.info("API keys from %s (%d keys)", store.path, len(store.keys))
    return [AuthInterceptor(store, run_keys=run_keys)]
