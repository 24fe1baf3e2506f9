"""Settings: one pydantic-settings object per process, from flags, environment or `.env`.

Design decisions:
- Each process builds one settings object (`ServeSettings` for the server, `UiSettings`
  in ui/settings.py, `ClientSettings` for every gRPC client). Precedence: a flag given on
  the command line, then the environment, then `.env` in the working directory, then the
  default. argparse keeps the CLIs' help and one-line errors; flags default to None and
  only the ones given are passed on, so the settings class owns every default.
- Secrets (the API key) have no flag: flags show in `ps` and in shell history. They come
  from the environment or `.env` only, held as `SecretStr` so they never print.
- A validation error becomes one line per field naming the flag and the variable, e.g.
  `--port (or $CHATFORGE_PORT): Input should be a valid integer`.
- `settings_table` renders the README's table from the classes, and a test checks the
  README against it, so the documentation cannot drift from the code.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_FILE = ".env"
S = TypeVar("S", bound=BaseSettings)


class SettingsError(ValueError):
    """Settings that cannot be used; the message names the flag and the variable."""


def env_name(cls: type[BaseSettings], field: str) -> str:
    """The environment variable of a field (its first alias, or prefix + name)."""
    info = cls.model_fields[field]
    alias = info.validation_alias
    if alias is not None:
        return str(getattr(alias, "choices", [alias])[-1])
    return (cls.model_config.get("env_prefix", "") + field).upper()


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def load_settings(cls: type[S], flags: dict[str, Any] | argparse.Namespace | None = None) -> S:
    """Build `cls` from the flags that were given (not None) over environment and `.env`."""
    if isinstance(flags, argparse.Namespace):
        flags = vars(flags)
    given = {k: v for k, v in (flags or {}).items() if v is not None and k in cls.model_fields}
    try:
        return cls(**given)
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            field = str(problem["loc"][0]) if problem["loc"] else ""
            message = problem["msg"].removeprefix("Value error, ")
            if field in cls.model_fields:
                message = f"{flag_name(field)} (or ${env_name(cls, field)}): {message}"
            lines.append(message)
        raise SettingsError("; ".join(lines)) from None


def _existing_file(path: Path | None, what: str) -> None:
    if path is not None and not path.expanduser().is_file():
        raise ValueError(f"{what} {path} is not a file")


class ClientSettings(BaseSettings):
    """How a gRPC client reaches the server: API key (environment only) and TLS files."""

    model_config = SettingsConfigDict(env_prefix="CHATFORGE_", env_file=ENV_FILE, extra="ignore")

    api_key: SecretStr | None = Field(
        None, description="API key sent as `authorization: Bearer` (environment only)"
    )
    tls_ca: Path | None = Field(None, description="CA certificate that signed the server's")
    tls_client_cert: Path | None = Field(None, description="client certificate for mutual TLS")
    tls_client_key: Path | None = Field(None, description="client certificate's private key")

    @model_validator(mode="after")
    def _files(self) -> ClientSettings:
        if (self.tls_client_cert is None) != (self.tls_client_key is None):
            raise ValueError("give --tls-client-cert and --tls-client-key together (mutual TLS)")
        if self.tls_client_cert is not None and self.tls_ca is None:
            raise ValueError("a client certificate needs --tls-ca (TLS to the server) as well")
        _existing_file(self.tls_ca, "--tls-ca")
        _existing_file(self.tls_client_cert, "--tls-client-cert")
        _existing_file(self.tls_client_key, "--tls-client-key")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_ca is not None


def add_client_flags(parser: argparse.ArgumentParser) -> None:
    """The TLS flags of every command that talks to a server (the key: environment only)."""
    for field in ("tls_ca", "tls_client_cert", "tls_client_key"):
        info = ClientSettings.model_fields[field]
        parser.add_argument(
            flag_name(field),
            default=None,
            help=f"{info.description} (default: ${env_name(ClientSettings, field)})",
        )


class ServeSettings(BaseSettings):
    """`python -m backend serve`."""

    model_config = SettingsConfigDict(env_prefix="CHATFORGE_", env_file=ENV_FILE, extra="ignore")

    config: Path | None = Field(None, description="model registry YAML (default: models.yaml)")
    policy: Path | None = Field(
        None, description="guardrail policy YAML (default: guardrails.yaml)"
    )
    collection: list[str] = Field(
        [], description="retrieval collections NAME=INDEX_DIR (env: a JSON list)"
    )
    host: str = Field("127.0.0.1", description="gRPC interface (0.0.0.0: all)")
    port: int = Field(50051, ge=0, le=65535, description="gRPC port (0: any free port)")
    metrics_host: str = Field("127.0.0.1", description="Prometheus /metrics interface")
    metrics_port: int = Field(9100, ge=0, le=65535, description="Prometheus /metrics port")
    grace: float = Field(30.0, ge=0, description="seconds streams may finish when draining")
    cache_entries: int = Field(1024, ge=0, description="response cache entries (0: off)")
    cache_mb: int = Field(64, ge=0, description="response cache size in MiB")
    cache_ttl: float = Field(3600.0, ge=0, description="seconds a cached reply stays valid")
    keys_file: Path | None = Field(None, description="API keys file (`python -m backend keys`)")
    insecure_open: bool = Field(False, description="serve a non-loopback address without API keys")
    tls_cert: Path | None = Field(None, description="server certificate (PEM), enables TLS")
    tls_key: Path | None = Field(None, description="server certificate's private key (PEM)")
    tls_client_ca: Path | None = Field(
        None, description="CA of client certificates; requires them (mutual TLS)"
    )

    @model_validator(mode="after")
    def _files(self) -> ServeSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give --tls-cert and --tls-key together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key")
        _existing_file(self.tls_cert, "--tls-cert")
        _existing_file(self.tls_key, "--tls-key")
        _existing_file(self.tls_client_ca, "--tls-client-ca")
        return self


def settings_table(processes: dict[str, type[BaseSettings]]) -> str:
    """A Markdown table of every setting of each process: flag, variable, default."""
    rows = ["| process | setting | flag | environment | default |", "|---|---|---|---|---|"]
    for process, cls in processes.items():
        for field, info in cls.model_fields.items():
            secret = info.annotation is not None and "SecretStr" in str(info.annotation)
            flag = "(none: a secret)" if secret else f"`{flag_name(field)}`"
            default = "" if info.default is None else f"`{info.default}`"
            rows.append(
                f"| {process} | {info.description} | {flag} | `{env_name(cls, field)}` "
                f"| {default} |"
            )
    return "\n".join(rows)
