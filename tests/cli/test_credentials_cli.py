"""`alpaca-vault credentials ...` through the real console script."""

from __future__ import annotations

import json
import os
import pty
import secrets
import select
import subprocess
import time
from pathlib import Path

from sqlalchemy import text

from alpaca_vault.db import Database
from tests.cli.conftest import CONSOLE_SCRIPT, Cli


def _pair() -> tuple[str, str]:
    return f"PKCLI{secrets.token_hex(8).upper()}", f"SKCLISECRET{secrets.token_urlsafe(24)}"


def _assert_clean(result: subprocess.CompletedProcess[str], *secrets_: str) -> None:
    for value in secrets_:
        assert value not in result.stdout
        assert value not in result.stderr
    assert "Traceback" not in result.stderr


async def test_add_list_remove_never_show_the_secret(cli: Cli) -> None:
    api, secret = _pair()
    added = cli("credentials", "add", "paper-main", "--environment", "paper", input=f"{api}\n{secret}\n")
    assert added.returncode == 0, added.stderr
    assert "Stored credential 'paper-main' (paper) for user 'local'." in added.stdout
    assert "without validation" in added.stdout
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
    assert cli("credentials", "add", "main", "-e", "live", input=f"{api}\n{secret}\n").returncode == 0

    again = cli("credentials", "add", "main", "-e", "paper", input="PKOTHER\nSKOTHER\n")
    assert again.returncode == 1
    assert "A credential named 'main' already exists" in again.stderr
    _assert_clean(again, "SKOTHER")

    same_pair = cli("credentials", "add", "copy", "-e", "live", input=f"{api}\n{secret}\n")
    assert same_pair.returncode == 1
    assert "already stored as credential 'main'" in same_pair.stderr
    _assert_clean(same_pair, api, secret)

    one_line = cli("credentials", "add", "half", "-e", "paper", input=f"{api}\n")
    assert one_line.returncode == 1
    assert "secret key on the second" in one_line.stderr

    (cli.data_dir / "master.key").chmod(0o644)
    unsafe = cli("credentials", "list")
    assert unsafe.returncode == 1
    assert f"chmod 600 {cli.data_dir / 'master.key'}" in unsafe.stderr
    _assert_clean(unsafe)


def test_hidden_prompt_on_a_terminal_does_not_echo(tmp_path: Path) -> None:
    api, secret = _pair()
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_VAULT_")}
    env["ALPACA_VAULT_DATA_DIR"] = str(tmp_path)
    proc = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "credentials", "add", "tty", "-e", "paper"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    seen = b""

    def read_until(marker: bytes, deadline: float) -> None:
        nonlocal seen
        while marker not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    return

    deadline = time.monotonic() + 30
    # Click writes the prompt, then getpass turns echo off and writes the trailing space:
    # typing before that space would be echoed and flushed, so wait for it, as a person would.
    read_until(b"API key id: ", deadline)
    os.write(master, api.encode() + b"\n")
    read_until(b"secret key: ", deadline)
    os.write(master, secret.encode() + b"\n")
    read_until(b"Stored credential", deadline)
    assert proc.wait(timeout=30) == 0
    read_until(b"\n\n", time.monotonic() + 0.5)
    os.close(master)
    output = seen.decode(errors="replace")
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
    assert key not in result.stderr
