"""`alpaca-vault doctor` on a healthy setup and on broken ones, through the console script."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from alpaca_vault.db.migrate import head_revision, make_config
from tests.cli.conftest import Cli
from tests.fixtures.network import closed_port, dead_url


def _simulated(cli: Cli, base_url: str) -> Cli:
    cli.env.update(
        {
            "ALPACA_VAULT_PAPER_URL": base_url,
            "ALPACA_VAULT_LIVE_URL": base_url,
            "ALPACA_VAULT_DATA_URL": base_url,
        }
    )
    return cli


def _doctor(cli: Cli) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    text = cli("doctor")
    as_json = cli("doctor", "--json")
    assert "Traceback" not in text.stderr + as_json.stderr
    assert text.returncode == as_json.returncode
    return text, json.loads(as_json.stdout)


def _checks(report: dict[str, Any], status: str) -> list[dict[str, Any]]:
    return [c for c in report["checks"] if c["status"] == status]


def _setup(cli: Cli, sim_account: Any) -> None:
    added = cli(
        "credentials",
        "add",
        "main",
        "-e",
        "paper",
        input=f"{sim_account.api_key}\n{sim_account.secret_key}\n",
    )
    assert added.returncode == 0, added.stderr
    assert cli("users", "add", "bob").returncode == 0
    assert cli("tokens", "create", "--user", "bob").returncode == 0


async def test_a_healthy_setup_passes(cli: Cli, simulator: Any, sim_account: Any) -> None:
    _simulated(cli, simulator.base_url)
    _setup(cli, sim_account)
    text, report = _doctor(cli)
    assert text.returncode == 0, text.stdout
    assert report["ok"] is True and report["problems"] == 0
    assert "No problems" in text.stdout
    by_check = {c["check"]: c for c in report["checks"]}
    assert by_check["database"]["details"]["revision"] == head_revision()
    assert by_check["key ring"]["details"]["primary"] in by_check["key ring"]["details"]["kids"]
    [credential] = [c for c in report["checks"] if c["check"] == "credential"]
    assert credential["details"]["name"] == "main" and credential["details"]["last_validated_at"]
    assert "1 active" in by_check["tokens"]["message"]
    alpaca = [c for c in report["checks"] if c["check"] == "alpaca"]
    assert [c["status"] for c in alpaca] == ["ok", "ok", "ok"]
    assert by_check["live trading"]["details"]["enabled"] is False
    # The settings that differ from the defaults are listed; a key never is.
    changed = by_check["settings"]["details"]["changed"]
    assert changed["ALPACA_VAULT_PAPER_URL"] == simulator.base_url
    if "ALPACA_VAULT_ENCRYPTION_KEYS" in cli.env:
        assert cli.env["ALPACA_VAULT_ENCRYPTION_KEYS"] not in text.stdout + json.dumps(report)
        assert changed["ALPACA_VAULT_ENCRYPTION_KEYS"] == "<1 key, hidden>"
    assert sim_account.secret_key not in text.stdout and sim_account.api_key not in text.stdout


async def test_unreachable_alpaca_fails_with_the_setting_to_fix(
    cli: Cli, simulator: Any, sim_account: Any
) -> None:
    _simulated(cli, simulator.base_url)
    _setup(cli, sim_account)
    dead = dead_url()
    cli.env["ALPACA_VAULT_DATA_URL"] = dead
    text, report = _doctor(cli)
    assert text.returncode == 1
    [failed] = _checks(report, "fail")
    assert failed["message"].startswith(f"could not reach Alpaca at {dead}")
    assert "ALPACA_VAULT_DATA_URL" in failed["fix"]
    assert f"could not reach Alpaca at {dead}" in text.stdout and "fix: " in text.stdout
    assert "1 problem found" in text.stdout


def test_an_unreachable_live_endpoint_only_warns_until_a_live_credential_is_stored(
    cli: Cli, simulator: Any, sim_account: Any
) -> None:
    """The README's offline setup (paper and data URLs on the simulator, the live URL left as it is and
    unreachable): `doctor` passed nothing before, and failed on an endpoint no credential used."""
    _simulated(cli, simulator.base_url)
    _setup(cli, sim_account)
    dead = dead_url()
    cli.env["ALPACA_VAULT_LIVE_URL"] = dead
    text, report = _doctor(cli)
    assert text.returncode == 0, text.stdout
    [warned] = [c for c in _checks(report, "warn") if c["check"] == "alpaca"]
    assert warned["message"] == (
        f"could not reach Alpaca at {dead} (connect error); no live credential is stored, so nothing needs it yet"
    )
    live = cli(
        "credentials",
        "add",
        "live-main",
        "-e",
        "live",
        "--no-validate",
        input="AKLIVE0000000000TEST\nlive-secret\n",
    )
    assert live.returncode == 0, live.stderr
    text, report = _doctor(cli)
    assert text.returncode == 1
    [failed] = [c for c in _checks(report, "fail") if c["check"] == "alpaca"]
    assert failed["message"].startswith(f"could not reach Alpaca at {dead}")
    assert "ALPACA_VAULT_LIVE_URL" in failed["fix"]


def test_a_missing_key_file_is_reported_before_it_is_replaced(
    tmp_path: Path, simulator: Any, sim_account: Any
) -> None:
    # The embedded SQLite vault keeps its key in DATA_DIR/master.key; losing it loses every credential,
    # and starting the server would quietly make a new, different key. Doctor must say so, and not make one.
    cli = _simulated(Cli(tmp_path / "data", None), simulator.base_url)
    _setup(cli, sim_account)
    key_file = cli.data_dir / "master.key"
    key_file.unlink()
    text, report = _doctor(cli)
    assert text.returncode == 1
    [failed] = _checks(report, "fail")
    assert failed["check"] == "sealed values"
    assert "1 credential stored, but the master key that protects them is missing" in failed["message"]
    assert "restore master.key" in failed["fix"]
    assert not key_file.exists(), "doctor must never create a key file"


async def test_values_still_in_the_old_form_are_reported_with_the_command_that_moves_them(
    tmp_path: Path, simulator: Any
) -> None:
    from alpaca_vault.db import Database
    from alpaca_vault.vault import CredentialService, KeyRing
    from tests.cli.conftest import bulk_seal

    cli = _simulated(Cli(tmp_path / "data", None), simulator.base_url)
    assert cli("credentials", "list").returncode == 0  # makes the vault and its key
    keyring = KeyRing.load(None, cli.data_dir)
    db = Database.create(cli.effective_url)
    try:
        user = await CredentialService(db, keyring).ensure_user("local")
        await bulk_seal(db, keyring, user.id, 2, prefix="old")  # sealed directly under the master key
    finally:
        await db.dispose()
    text, report = _doctor(cli)
    assert text.returncode == 0  # a warning: everything still opens
    [envelope] = [c for c in report["checks"] if c["check"] == "envelope"]
    assert envelope["status"] == "warn"
    assert envelope["message"].startswith("2 credentials of 1 user still sealed in the old form")
    assert envelope["fix"].endswith("keys rotate")
    assert cli("keys", "rotate").returncode == 0
    _, after = _doctor(cli)
    assert not [c for c in after["checks"] if c["check"] == "envelope"]


def test_a_world_readable_key_file_names_the_chmod(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "data", None)
    assert cli("credentials", "list").returncode == 0  # makes the vault and its key
    (cli.data_dir / "master.key").chmod(0o644)
    text, report = _doctor(cli)
    [failed] = [c for c in _checks(report, "fail") if c["check"] == "key ring"]
    assert failed["fix"] == f"chmod 600 {cli.data_dir / 'master.key'}"
    assert text.returncode == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_database_behind_on_migrations_says_db_upgrade(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, simulator: Any
) -> None:
    from alembic import command

    data_dir = tmp_path / "data"
    if backend == "sqlite":
        data_dir.mkdir(mode=0o700)
        cli = Cli(data_dir, None)
        url = cli.effective_url
    else:
        from alpaca_vault.vault import generate_key

        url = await request.getfixturevalue("postgres_databases").create_empty()
        cli = Cli(data_dir, url, env={"ALPACA_VAULT_ENCRYPTION_KEYS": generate_key()})
    previous = f"{int(head_revision()) - 1:04d}"
    # A real database at the previous migration, made by Alembic itself.
    await asyncio.to_thread(command.upgrade, make_config(url), previous)
    _simulated(cli, simulator.base_url)
    text, report = _doctor(cli)
    assert text.returncode == 1
    [failed] = _checks(report, "fail")
    assert failed["check"] == "database"
    assert f"is at migration {previous}, behind {head_revision()}" in failed["message"]
    assert failed["fix"].endswith("alpaca-vault db upgrade")
    # ...and doctor left it as it was.
    assert cli("doctor", "--json").returncode == 1
    assert cli("db", "upgrade").returncode == 0
    assert cli("doctor").returncode == 0


def test_the_database_password_is_never_printed_even_when_the_database_is_down(tmp_path: Path) -> None:
    password = "Pw-" + "s3cret-doctor-canary"
    url = f"postgresql+asyncpg://vault:{password}@127.0.0.1:{closed_port()}/vault"
    cli = Cli(tmp_path / "data", url, env={"ALPACA_VAULT_ENCRYPTION_KEYS": "k" * 43})
    text, report = _doctor(cli)
    assert text.returncode == 1
    assert password not in text.stdout + text.stderr + json.dumps(report)
    database = next(c for c in report["checks"] if c["check"] == "database")
    assert database["status"] == "fail" and "cannot connect" in database["message"]
    assert "vault:***@127.0.0.1" in database["message"]


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    from alpaca_vault import __version__

    result = Cli(tmp_path, None)("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"alpaca-vault {__version__}"


COMMANDS = [
    (),
    ("serve",),
    ("simulator",),
    ("doctor",),
    ("credentials", "add"),
    ("credentials", "update"),
    ("credentials", "remove"),
    ("tokens", "create"),
    ("tokens", "revoke"),
    ("users", "remove"),
    ("keys", "rotate"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_help_has_no_stray_type_markers(tmp_path: Path, command: tuple[str, ...]) -> None:
    result = Cli(tmp_path, None)(*command, "--help", COLUMNS="200")
    assert result.returncode == 0, result.stderr
    assert "<bool>" not in result.stdout
    assert not re.search(r"\{\w+\}", result.stdout), result.stdout
    assert "--help" in result.stdout


async def test_an_expiring_token_is_renewed_as_the_same_kind(
    cli: Cli, simulator: Any, sim_account: Any
) -> None:
    """The renewal hint for a console sign-in token makes a console token (`--console`), not an agent's."""
    _simulated(cli, simulator.base_url)
    _setup(cli, sim_account)
    made = cli("tokens", "create", "--user", "bob", "--name", "browser", "--console", "--expires-in", "2")
    assert made.returncode == 0, made.stderr
    _, report = _doctor(cli)
    [warned] = [c for c in _checks(report, "warn") if c["check"] == "tokens"]
    assert "bob/browser (avc_" in warned["message"]
    assert "tokens create --user bob --console (then `" in warned["fix"]
