"""`alpaca-vault credentials update`, and CLI hints that lead somewhere, through the console script."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import CONSOLE_SCRIPT, Cli, answer_on_a_terminal
from tests.fixtures.network import dead_url


def _pair() -> tuple[str, str]:
    return f"PKUPD{secrets.token_hex(8).upper()}", f"SKUPDSECRET{secrets.token_urlsafe(24)}"


def _clean(result: subprocess.CompletedProcess[str], *values: str) -> None:
    for value in values:
        assert value not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def _listed(cli: Cli) -> dict[str, Any]:
    return {c["name"]: c for c in json.loads(cli("credentials", "list", "--json").stdout)}


async def test_rename_deactivate_activate(cli: Cli) -> None:
    api, secret = _pair()
    assert (
        cli(
            "credentials", "add", "main", "-e", "paper", "--no-validate", input=f"{api}\n{secret}\n"
        ).returncode
        == 0
    )

    renamed = cli("credentials", "update", "main", "--rename", "paper-main", "--deactivate")
    assert renamed.returncode == 0, renamed.stderr
    assert renamed.stdout.strip() == "Updated credential 'main': renamed to 'paper-main'; deactivated."
    assert _listed(cli)["paper-main"]["is_active"] is False

    # A deactivated credential's hint is the CLI command that fixes it, not an MCP tool.
    refused = cli("credentials", "validate", "paper-main")
    assert refused.returncode == 1
    assert "update_credential" not in refused.stderr
    assert "Credential 'paper-main' is deactivated." in refused.stderr
    assert "credentials update paper-main --activate` activates it." in refused.stderr

    activated = cli("credentials", "update", "paper-main", "--activate")
    assert activated.returncode == 0, activated.stderr
    assert _listed(cli)["paper-main"]["is_active"] is True

    nothing = cli("credentials", "update", "paper-main")
    assert nothing.returncode == 2
    assert nothing.stderr.startswith("alpaca-vault: nothing to change: pass --rename")

    taken = cli(
        "credentials", "add", "other", "-e", "paper", "--no-validate", input="PKOTHER123\nSKOTHER123\n"
    )
    assert taken.returncode == 0
    clash = cli("credentials", "update", "other", "--rename", "paper-main")
    assert clash.returncode == 1
    assert "already exists" in clash.stderr and "update_credential" not in clash.stderr
    assert "credentials update paper-main --replace-keys`" in clash.stderr
    _clean(clash, "SKOTHER123")

    same = cli("credentials", "update", "paper-main", "--rename", "paper-main")
    assert same.returncode == 0 and same.stdout.strip() == "Updated credential 'paper-main': no change."

    # Each update is on record, by the CLI, before it happens (the refused rename too: it was asked for);
    # a rename to the name it has changes nothing and records nothing.
    events = json.loads(cli("audit", "list", "--action", "credential.update", "--json").stdout)
    recorded = sorted((e["credential"], e["actor"], e["details"]["changes"]) for e in events)
    assert recorded == [
        ("main", "cli", "rename to paper-main; deactivate"),
        ("other", "cli", "rename to paper-main"),
        ("paper-main", "cli", "activate"),
    ]


def test_replace_keys_validates_the_new_pair_and_never_shows_it(
    tmp_path: Path, simulator: Any, sim_account: Any
) -> None:
    cli = Cli(
        tmp_path / "data",
        None,
        env={
            "ALPACA_VAULT_PAPER_URL": simulator.base_url,
            "ALPACA_VAULT_LIVE_URL": simulator.base_url,
            "ALPACA_VAULT_DATA_URL": simulator.base_url,
        },
    )
    old_api, old_secret = _pair()
    assert (
        cli(
            "credentials", "add", "main", "-e", "paper", "--no-validate", input=f"{old_api}\n{old_secret}\n"
        ).returncode
        == 0
    )

    wrong = cli(
        "credentials", "update", "main", "--replace-keys", input=f"{sim_account.api_key}\nWrongSecret0000\n"
    )
    assert wrong.returncode == 1
    assert "did not accept this key pair" in wrong.stderr
    _clean(wrong, sim_account.api_key, "WrongSecret0000")

    new = f"{sim_account.api_key}\n{sim_account.secret_key}\n"
    replaced = cli("credentials", "update", "main", "--replace-keys", input=new)
    assert replaced.returncode == 0, replaced.stderr
    assert (
        f"Updated credential 'main': key pair replaced; Alpaca accepted it: account {sim_account.account_number}, "
        "ACTIVE." in replaced.stdout
    )
    _clean(replaced, sim_account.api_key, sim_account.secret_key, old_api, old_secret)
    assert _listed(cli)["main"]["account_number"] == sim_account.account_number
    # The stored pair is the new one: validating it now opens the simulator account.
    checked = cli("credentials", "validate", "main")
    assert checked.returncode == 0, checked.stderr
    assert sim_account.account_number in checked.stdout


def test_replace_keys_reads_a_hidden_prompt_on_a_terminal(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_VAULT_")}
    env["ALPACA_VAULT_DATA_DIR"] = str(tmp_path)
    old_api, old_secret = _pair()
    # Only the update needs the terminal: the credential it replaces is stored in this process.
    added = Cli(tmp_path, None)(
        "credentials", "add", "tty", "-e", "paper", "--no-validate", input=f"{old_api}\n{old_secret}\n"
    )
    assert added.returncode == 0, added.stderr
    api, secret = _pair()
    output = answer_on_a_terminal(
        ["credentials", "update", "tty", "--replace-keys", "--no-validate"],
        env,
        [(b"API key id: ", api), (b"secret key: ", secret)],
        done=b"Updated credential",
    )
    assert "Updated credential 'tty': key pair replaced, not validated" in output
    assert api not in output and secret not in output


def test_offline_validation_says_could_not_reach_alpaca_once(tmp_path: Path) -> None:
    dead = dead_url()
    cli = Cli(tmp_path / "data", None, env={"ALPACA_VAULT_PAPER_URL": dead})
    api, secret = _pair()
    result = cli("credentials", "add", "main", "-e", "paper", input=f"{api}\n{secret}\n")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"alpaca-vault: could not reach Alpaca at {dead} (connection failed). Nothing was stored. "
        "--no-validate stores without checking."
    ]
    assert result.stdout == ""


def test_hints_name_the_executable_when_it_is_not_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In this process: the hint reads the executable it runs as and PATH, once a process (the cache is
    # cleared before each command, as a new process starts without it).
    from alpaca_vault.server import hints

    cli = Cli(tmp_path / "data", None)
    monkeypatch.setattr("sys.argv", [str(CONSOLE_SCRIPT), "credentials", "list"])
    try:
        hints.program.cache_clear()
        bare = "/usr/bin:/bin"  # the venv's bin is not on it, as on a fresh clone
        empty = cli("credentials", "list", PATH=bare)
        assert empty.returncode == 0, empty.stderr
        assert f"`{CONSOLE_SCRIPT} credentials add NAME --environment paper`" in empty.stdout
        hints.program.cache_clear()
        on_path = cli("credentials", "list", PATH=f"{CONSOLE_SCRIPT.parent}:/usr/bin:/bin")
        assert "`alpaca-vault credentials add NAME --environment paper`" in on_path.stdout
    finally:
        hints.program.cache_clear()  # later tests in this worker read the real PATH again


def test_usage_errors_are_one_line_naming_the_help_to_read(tmp_path: Path) -> None:
    """A bad value, a missing option or an unknown command: one line on stderr starting with
    `alpaca-vault:`, as the README promises for every error (they were typer's boxed panels), exit 2."""
    env = {**os.environ, "ALPACA_VAULT_DATA_DIR": str(tmp_path)}
    cases = [
        (
            ["credentials", "add", "x", "-e", "foo"],
            "alpaca-vault: Invalid value for '--environment' / '-e': Value error, 'foo' is not one of "
            "'paper', 'live'. See `alpaca-vault credentials add --help`.",
        ),
        (
            ["tokens", "create"],
            "alpaca-vault: Missing option '--user'. See `alpaca-vault tokens create --help`.",
        ),
        (["bogus"], "alpaca-vault: No such command 'bogus'. See `alpaca-vault --help`."),
    ]
    for args, said in cases:
        result = subprocess.run(
            [str(CONSOLE_SCRIPT), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        assert (result.returncode, result.stderr, result.stdout) == (2, said + "\n", ""), args
    # Without arguments the help is still shown.
    bare = subprocess.run([str(CONSOLE_SCRIPT)], capture_output=True, text=True, timeout=60, env=env)
    assert "Usage: alpaca-vault [OPTIONS] COMMAND" in bare.stdout + bare.stderr
