"""`python -m backend serve`'s settings (the mechanism: backend/settings.py).

Design decisions:
- The registry and policy paths default to None, meaning the repository's models.yaml and
  guardrails.yaml, resolved by the CLI, so this module imports nothing of the server.
- Certificate pairs are checked together here (one without the other is an error naming
  both flags), and the files must exist, so a typo fails before the port opens.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.settings import ENV_FILE, existing_file


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
    http_port: int | None = Field(
        None, ge=0, le=65535, description="OpenAI-compatible HTTP API port on --host "
        "(0: any free port; unset: off)",
    )  # fmt: skip
    metrics_host: str = Field("127.0.0.1", description="Prometheus /metrics interface")
    metrics_port: int = Field(9100, ge=0, le=65535, description="Prometheus /metrics port")
    grace: float = Field(30.0, ge=0, description="seconds streams may finish when draining")
    watch_models: float = Field(
        2.0, ge=0, description="seconds between looks at --config and the files it includes: "
        "a change loads new models and retires removed ones (0: only on ReloadModels)",
    )  # fmt: skip
    cache_entries: int = Field(1024, ge=0, description="response cache entries (0: off)")
    cache_mb: int = Field(64, ge=0, description="response cache size in MiB")
    cache_ttl: float = Field(3600.0, ge=0, description="seconds a cached reply stays valid")
    eval_arg: list[str] = Field(
        [], description="an argument added to every `python -m evals run` that RunEval "
        "starts, e.g. --eval-arg=--corpus=DIR (repeatable; env: a JSON list)",
    )  # fmt: skip
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
        existing_file(self.tls_cert, "--tls-cert")
        existing_file(self.tls_key, "--tls-key")
        existing_file(self.tls_client_ca, "--tls-client-ca")
        return self
