"""One settings object per process: flag over environment over `.env` over default,
secrets never from flags, errors naming flag and variable, and the README's table."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from backend.cli import build_parser
from backend.serve_settings import ServeSettings
from backend.settings import (
    ClientSettings,
    SettingsError,
    load_settings,
    settings_table,
)
from ui.__main__ import build_parser as ui_parser
from ui.settings import UiSettings

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT / "deploy" / "gcp"))  # appended: deploy/gcp must not shadow packages
from gcp import GcpSettings  # noqa: E402

PROCESSES = {"server": ServeSettings, "clients": ClientSettings, "UI": UiSettings,
             "deploy/gcp": GcpSettings}  # fmt: skip


def test_flag_over_environment_over_dotenv_over_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("CHATFORGE_PORT", "CHATFORGE_GRACE", "CHATFORGE_METRICS_HOST"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text("CHATFORGE_PORT=6000\nCHATFORGE_GRACE=5\n")
    monkeypatch.setenv("CHATFORGE_GRACE", "7")
    settings = load_settings(ServeSettings, {"metrics_host": "0.0.0.0", "port": None})
    assert settings.port == 6000  # .env
    assert settings.grace == 7.0  # environment over .env
    assert settings.metrics_host == "0.0.0.0"  # flag
    assert settings.cache_entries == 1024  # default
    assert load_settings(ServeSettings, {"port": "7000"}).port == 7000  # flag over .env


def test_the_api_key_comes_from_the_environment_only(monkeypatch):
    monkeypatch.setenv("CHATFORGE_API_KEY", "cf_0123abcd_secret-secret-secret-secret")
    settings = load_settings(ClientSettings)
    assert settings.api_key.get_secret_value().startswith("cf_0123abcd_")
    assert "secret-secret" not in repr(settings)  # never printed
    for parser in (build_parser(), ui_parser()):
        assert "--api-key" not in parser.format_help()
    with pytest.raises(SystemExit):
        ui_parser().parse_args(["--api-key", "x"])


def test_errors_name_the_flag_and_the_variable():
    with pytest.raises(SettingsError, match=r"--port \(or \$CHATFORGE_PORT\): Input should"):
        load_settings(ServeSettings, {"port": "fifty"})
    with pytest.raises(SettingsError, match="give --tls-client-cert and --tls-client-key"):
        load_settings(ClientSettings, {"tls_client_cert": __file__})


def test_the_readme_table_is_the_settings_classes():
    readme = (ROOT / "README.md").read_text()
    assert settings_table(PROCESSES) in readme
