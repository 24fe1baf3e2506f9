"""TLS and mutual TLS against a real server process, with a CA and certificates made at
test time by the `cryptography` package."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from backend.client import ChatClient, RetryPolicy
from backend.launcher import BackendProcess
from backend.settings import ClientSettings
from tests.conftest import NO_CACHE
from tests.helpers import run_backend


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(key, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def make_ca(folder: Path, name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = folder / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


def issue(folder: Path, ca, name: str, server: bool) -> tuple[Path, Path]:
    """A certificate for `name` signed by `ca` (server: valid for 127.0.0.1 and localhost)."""
    ca_key, ca_cert, _ = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    cert_path = folder / f"{name}.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, _write_key(key, folder / f"{name}-key.pem")


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca(folder, "test-ca")
    other_ca = make_ca(folder, "other-ca")
    server_cert, server_key = issue(folder, ca, "server", server=True)
    client_cert, client_key = issue(folder, ca, "client", server=False)
    stranger_cert, stranger_key = issue(folder, other_ca, "stranger", server=False)
    return {
        "ca": ca[2], "other_ca": other_ca[2],
        "server_cert": server_cert, "server_key": server_key,
        "client_cert": client_cert, "client_key": client_key,
        "stranger_cert": stranger_cert, "stranger_key": stranger_key,
    }  # fmt: skip


@pytest.fixture(scope="module")
def mtls_server(tiny_registry, pki, tmp_path_factory):
    """TLS with client certificates required (mutual TLS), signed by the test CA."""
    extra = ["--tls-cert", str(pki["server_cert"]), "--tls-key", str(pki["server_key"]),
             "--tls-client-ca", str(pki["ca"]), *NO_CACHE]  # fmt: skip
    client = ClientSettings(
        tls_ca=pki["ca"], tls_client_cert=pki["client_cert"], tls_client_key=pki["client_key"]
    )
    log = tmp_path_factory.mktemp("logs") / "mtls-server.log"
    with BackendProcess(tiny_registry, extra_args=extra, log_path=log, client=client) as server:
        yield server


def answer(server, settings: ClientSettings) -> str:
    with ChatClient(server.target, settings=settings, retry=RetryPolicy(attempts=1)) as client:
        events = list(client.chat("Hello", sampling={"max_tokens": 5}, timeout=30))
    assert events[-1].HasField("finished")
    return events[0].started.model


def test_client_with_ca_and_certificate_chats(mtls_server, pki):
    settings = ClientSettings(
        tls_ca=pki["ca"], tls_client_cert=pki["client_cert"], tls_client_key=pki["client_key"]
    )
    assert answer(mtls_server, settings) == "tiny"
    assert "(TLS, open)" in mtls_server.log_path.read_text()


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({}, id="plaintext"),
        pytest.param({"tls_ca": "ca"}, id="no client certificate"),
        pytest.param(
            {
                "tls_ca": "other_ca",
                "tls_client_cert": "client_cert",
                "tls_client_key": "client_key",
            },
            id="server not trusted",
        ),  # fmt: skip
        pytest.param(
            {"tls_ca": "ca", "tls_client_cert": "stranger_cert", "tls_client_key": "stranger_key"},
            id="client from another CA",
        ),  # fmt: skip
    ],
)
def test_connections_the_server_or_client_cannot_trust_fail(mtls_server, pki, settings):
    client = ClientSettings(**{field: pki[name] for field, name in settings.items()})
    with pytest.raises(grpc.RpcError) as caught:
        answer(mtls_server, client)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_cli_clients_and_evals_take_tls_flags(mtls_server, pki):
    flags = ["--target", mtls_server.target, "--tls-ca", str(pki["ca"]),
             "--tls-client-cert", str(pki["client_cert"]),
             "--tls-client-key", str(pki["client_key"])]  # fmt: skip
    health = run_backend("health", *flags, timeout=60)
    assert health.returncode == 0, health.stderr
    assert "SERVING" in health.stdout
    chat = run_backend("chat", "Hi", "--max-tokens", "4", *flags, timeout=120)
    assert chat.returncode == 0, chat.stderr
    assert "finish" in chat.stderr
    evals = subprocess.run(
        [sys.executable, "-m", "evals", "run", "smoke", "--size", "1", "--no-record", *flags],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert evals.returncode == 0, evals.stderr[-2000:]
    assert "smoke v" in evals.stdout and "0 errors" in evals.stdout
    plain = run_backend("health", "--target", mtls_server.target, "--timeout", "2", timeout=60)
    assert plain.returncode == 1 and "not serving" in plain.stdout


def test_bad_tls_settings_are_named(tiny_registry, pki):
    half = run_backend("serve", "--config", str(tiny_registry), "--tls-cert",
                       str(pki["server_cert"]), timeout=60)  # fmt: skip
    assert half.returncode == 2
    assert "give --tls-cert and --tls-key together" in half.stderr
    missing = run_backend("health", "--tls-ca", "/nowhere/ca.pem", timeout=60)
    assert missing.returncode == 2
    assert "--tls-ca /nowhere/ca.pem is not a file" in missing.stderr
