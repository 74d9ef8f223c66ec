"""Settings are validated at start with errors that say what to set."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mcp.server.mcpserver.exceptions import ToolError

from alpaca_vault.server.app import open_runtime
from alpaca_vault.server.settings import SettingsError, load_settings
from tests.cli.conftest import Cli


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
        ("ALPACA_VAULT_TOOLSETS", "trading,futures", "unknown toolset(s) futures"),
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


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("vault.example.com", ["vault.example.com"]),
        ("vault.example.com, api.example.com,", ["vault.example.com", "api.example.com"]),
        ('["vault.example.com", "api.example.com"]', ["vault.example.com", "api.example.com"]),
        ("", []),
    ],
)
@pytest.mark.parametrize("variable", ["ALLOWED_HOSTS", "ALLOWED_ORIGINS"])
def test_allowed_hosts_and_origins_take_a_comma_separated_or_json_list(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: list[str]
) -> None:
    monkeypatch.setenv(f"ALPACA_VAULT_{variable}", value)
    assert getattr(load_settings(), variable.lower()) == expected


@pytest.mark.parametrize("value", ["[vault.example.com", "[1, 2]"])
def test_a_broken_json_list_names_the_variable_once(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("ALPACA_VAULT_ALLOWED_HOSTS", value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    lines = str(raised.value).splitlines()
    assert lines[0] == "Invalid settings:"
    assert len(lines) == 2
    assert lines[1].startswith("  ALPACA_VAULT_ALLOWED_HOSTS: ")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+asyncpg://app:Hunter2pw@db.example:notaport/vault", "is the port a number?"),
        ("postgresql://app:Hunter2pw@db.example:99999/vault", "the port must be between 1 and 65535"),
        ("postgresql+asyncpg://app:Hunter2pw@[::1/vault", "is the port a number?"),
    ],
)
def test_a_malformed_database_url_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, url: str, expected: str
) -> None:
    monkeypatch.setenv("ALPACA_VAULT_DATABASE_URL", url)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith("Invalid settings:\n  ALPACA_VAULT_DATABASE_URL: ")
    assert expected in message
    assert "Hunter2pw" not in message
    assert "db.example" not in message


@pytest.mark.parametrize("variable", ["PAPER_URL", "LIVE_URL", "DATA_URL"])
@pytest.mark.parametrize(
    "url", ["http://paper-api.alpaca.markets", "http://10.0.0.5:8080", "http://localhost.evil.example"]
)
def test_plain_http_to_another_host_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, url: str
) -> None:
    monkeypatch.setenv(f"ALPACA_VAULT_{variable}", url)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert f"ALPACA_VAULT_{variable}: " in str(raised.value)
    assert "use https://" in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.4.5.6",
        "http://localhost:9000/",
        "http://[::1]:9000",
        "https://alpaca.example",
    ],
)
def test_plain_http_is_accepted_on_loopback_and_https_anywhere(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("ALPACA_VAULT_PAPER_URL", url)
    assert load_settings().paper_url == url.rstrip("/")


def _console(data_dir: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """A command with only the given ALPACA_VAULT_ variables, as a user runs it: its exit code and
    output, from the real typer app in this process (tests/cli/conftest.py: a process per command
    only costs imports; ALPACA_VAULT_TEST_CLI=subprocess runs the console script instead)."""
    return Cli(data_dir, None)(*args, **{f"ALPACA_VAULT_{name}": value for name, value in variables.items()})


def test_commands_read_a_plain_allowed_host(tmp_path: Path) -> None:
    listed = _console(tmp_path, "users", "list", "--json", ALLOWED_HOSTS="vault.example.com")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == "[]"


@pytest.mark.parametrize("command", [("credentials", "list"), ("users", "list"), ("db", "upgrade")])
def test_commands_report_a_malformed_database_url_in_one_line(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    result = _console(
        tmp_path, *command, DATABASE_URL="postgresql+asyncpg://app:Hunter2pw@db.example:notaport/vault"
    )
    assert result.returncode == 2
    assert "ALPACA_VAULT_DATABASE_URL: " in result.stderr
    assert "Traceback" not in result.stderr
    assert "Hunter2pw" not in result.stderr + result.stdout


# Nothing listens on port 1: the key ring is checked before any connection is made.
UNREACHABLE_POSTGRES = "postgresql+asyncpg://app:pw@127.0.0.1:1/vault"


def test_cli_on_a_shared_database_needs_the_encryption_keys(tmp_path: Path) -> None:
    result = _console(tmp_path, "credentials", "list", DATABASE_URL=UNREACHABLE_POSTGRES)
    assert result.returncode == 1
    assert "set ALPACA_VAULT_ENCRYPTION_KEYS to the same keys on every replica" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "master.key").exists()


async def test_server_on_a_shared_database_needs_the_encryption_keys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ALPACA_VAULT_ENCRYPTION_KEYS", raising=False)
    settings = load_settings(data_dir=tmp_path, database_url=UNREACHABLE_POSTGRES)
    async with open_runtime(settings) as runtime:
        with pytest.raises(ToolError) as raised:
            await runtime.ready()
    assert "set ALPACA_VAULT_ENCRYPTION_KEYS to the same keys on every replica" in str(raised.value)
    assert "`alpaca-vault keys generate` makes one" in str(raised.value)
    assert not (tmp_path / "master.key").exists()


async def test_server_on_the_embedded_sqlite_vault_makes_its_key_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ALPACA_VAULT_ENCRYPTION_KEYS", raising=False)
    monkeypatch.delenv("ALPACA_VAULT_DATABASE_URL", raising=False)
    async with open_runtime(load_settings(data_dir=tmp_path)) as runtime:
        await runtime.ready()
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600


def test_every_setting_is_documented_in_the_readme_configuration_table() -> None:
    from alpaca_vault.server.settings import Settings

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Configuration") :]
    missing = [
        f"ALPACA_VAULT_{name.upper()}"
        for name in Settings.model_fields
        if f"ALPACA_VAULT_{name.upper()}" not in table
    ]
    assert missing == []


def test_database_tls_settings_are_validated_and_reach_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPACA_VAULT_DATABASE_SSLMODE", "Verify-Full")
    monkeypatch.setenv("ALPACA_VAULT_DATABASE_SSL_CA", "/etc/ca.pem")
    monkeypatch.setenv("ALPACA_VAULT_DATABASE_POOL_RECYCLE", "600")
    connection = load_settings().database_connection
    assert (connection.sslmode, str(connection.ca_file), connection.pool_recycle_seconds) == (
        "verify-full",
        "/etc/ca.pem",
        600,
    )
    assert connection.allow_plaintext is False and connection.pool_pre_ping is True
    monkeypatch.setenv("ALPACA_VAULT_DATABASE_SSLMODE", "prefer")
    with pytest.raises(SettingsError, match="ALPACA_VAULT_DATABASE_SSLMODE"):
        load_settings()
    monkeypatch.setenv("ALPACA_VAULT_DATABASE_SSLMODE", "")
    monkeypatch.setenv("ALPACA_VAULT_DATABASE_SSL_CERT", "/etc/client.pem")
    with pytest.raises(SettingsError, match=r"ALPACA_VAULT_DATABASE_SSL_KEY: .*together"):
        load_settings()


# #15: the stock data feed
def test_data_feed_defaults_to_iex_and_refuses_unknown_feeds(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().data_feed == "iex"
    monkeypatch.setenv("ALPACA_VAULT_DATA_FEED", "sip")
    assert load_settings().data_feed == "sip"
    monkeypatch.setenv("ALPACA_VAULT_DATA_FEED", "nyse")
    with pytest.raises(SettingsError, match="ALPACA_VAULT_DATA_FEED"):
        load_settings()
