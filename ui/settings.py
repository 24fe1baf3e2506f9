"""`python -m ui`'s settings: flags over environment over `.env` (see backend/settings.py).

Design decisions:
- The variables a platform sets keep their names: `$PORT` (Cloud Run) and
  `$CHATFORGE_BACKEND`; the UI's own settings are `CHATFORGE_UI_*`, so one `.env` can hold
  the server's and the UI's settings side by side.
- How the UI reaches the backend (API key, TLS) is the shared `ClientSettings`; the key
  comes from the environment only and is never shown in the page.
- `--share` without a users file would publish every tab to anyone with the link; the
  rule that refuses it lives here, with the other checks of settings, so it fails before
  Gradio is imported.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.settings import ENV_FILE

DEFAULT_BACKEND = "127.0.0.1:50051"
_TARGET = re.compile(r"^\S+:\d{1,5}$")


class UiSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHATFORGE_UI_", env_file=ENV_FILE, extra="ignore", populate_by_name=True
    )

    backend: str = Field(
        DEFAULT_BACKEND,
        validation_alias=AliasChoices("backend", "CHATFORGE_BACKEND"),
        description="gRPC backend HOST:PORT",
    )
    host: str = Field("127.0.0.1", description="UI interface to serve on (0.0.0.0 in containers)")
    port: int = Field(
        7860, validation_alias=AliasChoices("port", "PORT"), description="UI HTTP port"
    )
    share: bool = Field(False, description="also open a public Gradio link (needs --auth-file)")
    public: bool = Field(False, description="allow --share without a login, on purpose")
    auth_file: Path | None = Field(
        None, description="UI users file (`python -m ui.users add`): turns the login on"
    )
    metrics_port: int = Field(
        9101, ge=0, lt=65536, description="the UI's Prometheus /metrics port on --host (0: off)"
    )

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, value: object) -> int:
        text = str(value)
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise ValueError(f"{text!r} is not a port number (1-65535)")
        return int(text)

    @field_validator("backend")
    @classmethod
    def _backend(cls, value: str) -> str:
        if not _TARGET.match(value):
            raise ValueError(f"{value!r} is not HOST:PORT, e.g. {DEFAULT_BACKEND}")
        return value

    @model_validator(mode="after")
    def _share_needs_login(self) -> UiSettings:
        if self.share and self.auth_file is None and not self.public:
            raise ValueError(
                "--share publishes the UI to anyone with the link; add a login with "
                "--auth-file users.yaml (create it with `python -m ui.users add NAME`), "
                "or pass --public as well to share it without one on purpose"
            )
        if self.auth_file is not None and not self.auth_file.expanduser().is_file():
            raise ValueError(
                f"--auth-file {self.auth_file} does not exist; create it with "
                f"`python -m ui.users add NAME --auth-file {self.auth_file}`"
            )
        return self
