"""Settings: one pydantic-settings object per process, from flags, environment or `.env`.

Design decisions:
- Each process builds one settings object (`ServeSettings` in backend/serve_settings.py
  for the server, `UiSettings` in ui/settings.py, `ClientSettings` here for every gRPC
  client). This module is the mechanism and the client's part only, so a client (the UI
  on Cloud Run) imports nothing of the server. Precedence: a flag given on
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


def existing_file(path: Path | None, what: str) -> None:
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
        existing_file(self.tls_ca, "--tls-ca")
        existing_file(self.tls_client_cert, "--tls-client-cert")
        existing_file(self.tls_client_key, "--tls-client-key")
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
