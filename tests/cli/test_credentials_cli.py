"""`alpaca-vault credentials ...` through the real console script."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy import text

from alpaca_vault.db import Database
from tests.cli.conftest import Cli, answer_on_a_terminal


def _pair() -> tuple[str, str]:
    return f"PKCLI{secrets.token_hex(8).upper()}", f"SKCLISECRET{secrets.token_urlsafe(24)}"


def _assert_clean(result: subprocess.CompletedProcess[str], *secrets_: str) -> None:
    for value in secrets_:
        assert value not in result.stdout
        assert value not in result.stderr
    assert "Traceback" not in result.stderr


async def test_add_list_remove_never_show_the_secret(cli: Cli) -> None:
    api, secret = _pair()
    added = cli(
        "credentials",
        "add",
        "paper-main",
        "--environment",
        "paper",
        "--no-validate",
        input=f"{api}\n{secret}\n",
    )
    assert added.returncode == 0, added.stderr
    assert "Stored credential 'paper-main' (paper) for user 'local'." in added.stdout
    assert "Not validated against Alpaca (--no-validate)" in added.stdout
    _assert_clean(added, api, secret)

    listed = cli("credentials", "list")
    assert listed.returncode == 0, listed.stderr
    assert "paper-main" in listed.stdout and "paper" in listed.stdout
    _assert_clean(listed, api, secret)

    as_json = cli("credentials", "list", "--json")
    assert as_json.returncode == 0, as_json.stderr
    [entry] = json.loads(as_json.stdout)
    assert (entry["name"], entry["environment"], entry["is_active"]) == ("paper-main", "paper", True)
    assert "api_key" not in entry and "secret_key" not in entry
    _assert_clean(as_json, api, secret)

    # What landed in the database is sealed.
    db = Database.create(cli.effective_url)
    try:
        async with db.engine.connect() as conn:
            dump = repr((await conn.execute(text("SELECT * FROM credentials"))).all())
    finally:
        await db.dispose()
    assert "paper-main" in dump and api not in dump and secret not in dump

    # Another user can neither see nor remove it; its owner can.
    refused = cli("credentials", "remove", "paper-main", "--user", "bob")
    assert refused.returncode == 1 and "User 'bob' has no credentials." in refused.stderr
    removed = cli("credentials", "remove", "paper-main")
    assert removed.returncode == 0 and "Removed credential 'paper-main'." in removed.stdout
    _assert_clean(removed, api, secret)


def test_refusals_are_one_clear_line_without_traceback(tmp_path: Path) -> None:
    # CLI behaviour only (the service's refusals are covered on both backends in tests/vault).
    cli = Cli(tmp_path / "data", None)
    api, secret = _pair()
    api = "AK" + api[2:]  # a live-looking key id, stored as live
    assert (
        cli(
            "credentials", "add", "main", "-e", "live", "--no-validate", input=f"{api}\n{secret}\n"
        ).returncode
        == 0
    )

    again = cli("credentials", "add", "main", "-e", "paper", "--no-validate", input="PKOTHER\nSKOTHER\n")
    assert again.returncode == 1
    assert "A credential named 'main' already exists" in again.stderr
    _assert_clean(again, "SKOTHER")

    same_pair = cli("credentials", "add", "copy", "-e", "live", "--no-validate", input=f"{api}\n{secret}\n")
    assert same_pair.returncode == 1
    assert "already stored as credential 'main'" in same_pair.stderr
    _assert_clean(same_pair, api, secret)

    one_line = cli("credentials", "add", "half", "-e", "paper", "--no-validate", input=f"{api}\n")
    assert one_line.returncode == 1
    assert "secret key on the second" in one_line.stderr

    (cli.data_dir / "master.key").chmod(0o644)
    unsafe = cli("credentials", "list")
    assert unsafe.returncode == 1
    assert f"chmod 600 {cli.data_dir / 'master.key'}" in unsafe.stderr
    _assert_clean(unsafe)


def test_hidden_prompt_on_a_terminal_does_not_echo(tmp_path: Path) -> None:
    api, secret = _pair()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_VAULT_")}
    env["ALPACA_VAULT_DATA_DIR"] = str(tmp_path)
    output = answer_on_a_terminal(
        ["credentials", "add", "tty", "-e", "paper", "--no-validate"],
        env,
        [(b"API key id: ", api), (b"secret key: ", secret)],
        done=b"Stored credential",
    )
    assert "Stored credential 'tty' (paper)" in output
    assert api not in output and secret not in output


def test_keys_generate_prints_a_key_and_how_to_use_it(tmp_path: Path) -> None:
    cli = Cli(tmp_path, None)
    args = ("keys", "generate")
    result = cli(*args)
    assert result.returncode == 0
    key = result.stdout.strip()
    assert len(key) == 43 and "\n" not in key
    assert "ALPACA_VAULT_ENCRYPTION_KEYS" in result.stderr and "keys rotate" in result.stderr
    assert "master.key" in result.stderr  # a desktop vault's keys live in that file, not in the environment
    assert "Keep the old keys after it" in result.stderr  # they verify the audit events signed under them
    assert key not in result.stderr


def _simulated(tmp_path: Path, simulator: Any) -> Cli:
    """The console script pointed at the simulator, so validation talks to a real (loopback) broker."""
    return Cli(
        tmp_path / "data",
        None,
        env={
            "ALPACA_VAULT_PAPER_URL": simulator.base_url,
            "ALPACA_VAULT_LIVE_URL": simulator.base_url,
            "ALPACA_VAULT_DATA_URL": simulator.base_url,
        },
    )


def test_add_validates_with_alpaca_and_validate_rechecks(
    tmp_path: Path, simulator: Any, sim_account: Any
) -> None:
    cli = _simulated(tmp_path, simulator)
    pair = f"{sim_account.api_key}\n{sim_account.secret_key}\n"
    added = cli("credentials", "add", "main", "-e", "paper", input=pair)
    assert added.returncode == 0, added.stderr
    assert f"Alpaca accepted it: account {sim_account.account_number}, ACTIVE." in added.stdout
    _assert_clean(added, sim_account.api_key, sim_account.secret_key)

    listed = json.loads(cli("credentials", "list", "--json").stdout)
    assert listed[0]["account_number"] == sim_account.account_number
    assert listed[0]["last_validated_at"] is not None

    checked = cli("credentials", "validate", "main")
    assert checked.returncode == 0, checked.stderr
    assert (
        f"Alpaca accepted credential 'main': account {sim_account.account_number}, ACTIVE." in checked.stdout
    )
    _assert_clean(checked, sim_account.api_key, sim_account.secret_key)

    simulator.set_account_status(sim_account.api_key, "ACCOUNT_CLOSED")
    closed = cli("credentials", "validate", "main")
    assert closed.returncode == 1
    assert "is ACCOUNT_CLOSED, not ACTIVE" in closed.stderr


def test_add_refuses_pairs_alpaca_rejects_and_stores_nothing(
    tmp_path: Path, simulator: Any, sim_account: Any
) -> None:
    cli = _simulated(tmp_path, simulator)
    wrong = cli("credentials", "add", "bad", "-e", "paper", input=f"{sim_account.api_key}\nWrongSecret0000\n")
    assert wrong.returncode == 1
    assert "did not accept this key pair on the paper endpoint (401)" in wrong.stderr
    assert "Nothing was stored." in wrong.stderr
    _assert_clean(wrong, sim_account.api_key, sim_account.secret_key, "WrongSecret0000")

    mixed_up = cli(
        "credentials", "add", "bad", "-e", "live", input=f"{sim_account.api_key}\n{sim_account.secret_key}\n"
    )
    assert mixed_up.returncode == 1
    assert "looks like a paper key" in mixed_up.stderr and "Store it as paper" in mixed_up.stderr
    assert json.loads(cli("credentials", "list", "--json").stdout) == []
