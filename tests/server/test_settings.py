"""Settings are validated at start with errors that say what to set."""

from __future__ import annotations

from pathlib import Path

import pytest

from alpaca_vault.server.settings import SettingsError, load_settings


def test_defaults_are_the_embedded_sqlite_vault(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ALPACA_VAULT_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.effective_database_url == f"sqlite+aiosqlite:///{tmp_path / 'vault.db'}"
    assert settings.paper_url == "https://paper-api.alpaca.markets"
    assert settings.allow_live_trading is False


def test_an_empty_data_dir_means_the_default_not_the_current_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALPACA_VAULT_DATA_DIR", "")
    assert load_settings().data_dir != Path.cwd()


def test_postgres_urls_are_normalised_to_asyncpg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPACA_VAULT_DATABASE_URL", "postgresql://u:p@db.example/vault")
    assert load_settings().effective_database_url == "postgresql+asyncpg://u:p@db.example/vault"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ALPACA_VAULT_DATABASE_URL", "mysql://x", "ALPACA_VAULT_DATABASE_URL"),
        (
            "ALPACA_VAULT_PAPER_URL",
            "paper-api.alpaca.markets",
            "ALPACA_VAULT_PAPER_URL: Value error, must start",
        ),
        ("ALPACA_VAULT_LOG_LEVEL", "loud", "ALPACA_VAULT_LOG_LEVEL"),
        ("ALPACA_VAULT_ALLOW_LIVE_TRADING", "perhaps", "ALPACA_VAULT_ALLOW_LIVE_TRADING"),
        ("ALPACA_VAULT_TOOLSETS", "trading,options", "unknown toolset(s) options"),
        ("ALPACA_VAULT_RATE_LIMIT_PER_MINUTE", "0", "ALPACA_VAULT_RATE_LIMIT_PER_MINUTE"),
    ],
)
def test_bad_settings_say_what_to_set(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert expected in str(raised.value)
    assert "Invalid settings" in str(raised.value)
