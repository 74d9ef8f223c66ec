"""`alpaca-vault users ...` and `tokens ...`: what an operator sees, on SQLite and as PostgreSQL roles."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import make_url
from typer.testing import CliRunner

from alpaca_vault.db import Database
from alpaca_vault.server.auth import BearerTokenVerifier
from alpaca_vault.server.cli import app
from alpaca_vault.server.hints import program
from alpaca_vault.vault.keyring import generate_key
from tests.multiuser.conftest import RlsDatabase

runner = CliRunner()


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"ALPACA_VAULT_DATA_DIR": str(tmp_path / "data")}


def test_users_add_list_and_duplicate(env: dict[str, str]) -> None:
    code, out, err = run(env, "users", "add", "alice")
    assert code == 0 and "Added user 'alice'" in out and "tokens create --user alice" in err
    code, _, err = run(env, "users", "add", "alice")
    assert code == 1 and "already exists" in err
    code, _, err = run(env, "users", "add", "bad name!")
    assert code == 1 and "Invalid user name" in err
    code, out, _ = run(env, "users", "list", "--json")
    (alice,) = json.loads(out)
    assert (alice["name"], alice["credentials"], alice["tokens"], alice["is_active"]) == ("alice", 0, 0, True)


def test_tokens_create_prints_only_the_token_on_stdout_and_list_never_shows_it(env: dict[str, str]) -> None:
    run(env, "users", "add", "alice")
    code, out, err = run(env, "tokens", "create", "--user", "alice", "--name", "laptop", "--expires-in", "30")
    assert code == 0, err
    token = out.strip()
    assert out == token + "\n" and token.startswith("avt_") and len(token) == 47
    assert "Authorization: Bearer <the token above>" in err and token not in err
    code, out, _ = run(env, "tokens", "list", "--json")
    (listed,) = json.loads(out)
    assert listed["user"] == "alice" and listed["name"] == "laptop" and listed["status"] == "active"
    assert (
        listed["prefix"] == token[:12] and listed["expires_at"] is not None and listed["last_used_at"] is None
    )
    code, table, _ = run(env, "tokens", "list")
    assert code == 0 and "laptop" in table and token[:12] in table
    for text in (out, table):
        assert token not in text and token[12:20] not in text


def test_tokens_create_for_an_unknown_user_names_the_known_ones(env: dict[str, str]) -> None:
    run(env, "users", "add", "alice")
    code, out, err = run(env, "tokens", "create", "--user", "bob")
    assert code == 1 and out == ""
    # The hint names the command as this shell can run it (the absolute path when it is not on PATH).
    assert f"User 'bob' not found. Known users: alice. `{program()} users add bob` creates it." in err


def test_tokens_create_console_makes_a_sign_in_token_that_lists_and_revokes_by_its_prefix(
    env: dict[str, str],
) -> None:
    """`--console` makes a person's console sign-in token (avc_): said as such, listed and revoked by its
    own prefix, and recorded in the audit trail with its kind."""
    run(env, "users", "add", "alice")
    code, out, err = run(env, "tokens", "create", "--user", "alice", "--name", "browser", "--console")
    assert code == 0, err
    token = out.strip()
    assert out == token + "\n" and token.startswith("avc_") and len(token) == 47 and token not in err
    assert "Created console sign-in token 'browser'" in err
    assert "never in an\nMCP client's configuration" in err and "It opens no MCP connection." in err
    agent_err = run(env, "tokens", "create", "--user", "alice", "--name", "agent")[2]
    assert "It does not sign in to the web console: for that, " in agent_err and "--console" in agent_err
    listed = {t["name"]: t for t in json.loads(run(env, "tokens", "list", "--json")[1])}
    assert listed["browser"]["prefix"] == token[:12] and listed["agent"]["prefix"].startswith("avt_")
    code, _, err = run(env, "tokens", "revoke", token)
    assert code == 1 and "never the token itself" in err and token not in err
    code, out, _ = run(env, "tokens", "revoke", token[:12])
    assert code == 0 and "Revoked token 'browser'" in out
    code, out, _ = run(env, "audit", "list", "--action", "token.create", "--json")
    kinds = {e["details"]["token_name"]: e["details"]["token_kind"] for e in json.loads(out)}
    assert kinds == {"browser": "console", "agent": "agent"}


def test_tokens_revoke_by_id_or_prefix_and_never_by_the_token(env: dict[str, str]) -> None:
    run(env, "users", "add", "alice")
    first = run(env, "tokens", "create", "--user", "alice", "--name", "one")[1].strip()
    run(env, "tokens", "create", "--user", "alice", "--name", "two")
    by_name = {t["name"]: t for t in json.loads(run(env, "tokens", "list", "--json")[1])}
    code, _, err = run(env, "tokens", "revoke", first)
    assert code == 1 and "never the token itself" in err and first not in err
    code, out, _ = run(env, "tokens", "revoke", by_name["one"]["prefix"])
    assert code == 0 and "Revoked token 'one'" in out
    code, out, _ = run(env, "tokens", "revoke", by_name["two"]["id"])
    assert code == 0 and "Revoked token 'two'" in out
    code, out, _ = run(env, "tokens", "revoke", by_name["two"]["id"])
    assert code == 0 and "already revoked" in out
    code, _, err = run(env, "tokens", "revoke", str(uuid.uuid4()))
    assert code == 1 and "not found" in err
    assert {t["status"] for t in json.loads(run(env, "tokens", "list", "--json")[1])} == {"revoked"}


def test_no_expiry_and_bounds(env: dict[str, str]) -> None:
    run(env, "users", "add", "alice")
    assert run(env, "tokens", "create", "--user", "alice", "--expires-in", "0")[0] == 0
    assert json.loads(run(env, "tokens", "list", "--json")[1])[0]["expires_at"] is None
    code, _, err = run(env, "tokens", "create", "--user", "alice", "--expires-in", "5000")
    assert code == 2 and "--expires-in" in err


def test_users_remove_takes_tokens_along_and_needs_yes_when_not_interactive(env: dict[str, str]) -> None:
    run(env, "users", "add", "alice")
    run(env, "users", "add", "bob")
    run(env, "tokens", "create", "--user", "alice")
    code, _, err = run(env, "users", "remove", "alice")
    assert code == 1 and "--yes" in err
    code, out, _ = run(env, "users", "remove", "alice", "--yes")
    assert code == 0 and "Removed user 'alice' with 0 credential(s) and 1 token(s)." in out
    assert json.loads(run(env, "tokens", "list", "--json")[1]) == []
    assert [u["name"] for u in json.loads(run(env, "users", "list", "--json")[1])] == ["bob"]
    code, _, err = run(env, "users", "remove", "alice", "--yes")
    assert code == 1 and "User 'alice' not found" in err


@pytest.mark.postgres
def test_admin_commands_as_the_application_role_say_to_use_the_owner(rls_database: RlsDatabase) -> None:
    # User and token changes are audited, so a shared database needs its key ring for them (#13).
    keys = {"ALPACA_VAULT_ENCRYPTION_KEYS": generate_key()}
    as_app = {"ALPACA_VAULT_DATABASE_URL": rls_database.app_url, **keys}
    as_owner = {"ALPACA_VAULT_DATABASE_URL": rls_database.owner_url, **keys}
    for args in (("users", "add", "alice"), ("users", "list"), ("tokens", "list")):
        code, _, err = run(as_app, *args)
        assert code == 1 and "owns the tables" in err and "Traceback" not in err
    assert run(as_owner, "users", "add", "alice")[0] == 0
    code, _, err = run(as_owner, "tokens", "create", "--user", "alice")
    assert code == 0, err
    assert json.loads(run(as_owner, "users", "list", "--json")[1])[0]["tokens"] == 1
    # A role the server does not know: one line saying so, no traceback, no password.
    stranger = make_url(rls_database.app_url).set(username="no_such_role_42", password="hunter2-hunter2")
    code, _, err = run(
        {"ALPACA_VAULT_DATABASE_URL": stranger.render_as_string(hide_password=False)}, "users", "list"
    )
    assert code == 1 and "the database refused" in err and "no_such_role_42" in err
    assert "hunter2" not in err and "Traceback" not in err


async def _sqlite_vault_with_a_token(path: Path) -> tuple[Database, str]:
    """A migrated SQLite vault with user alice and one bearer token of hers."""
    from alpaca_vault.accounts import AccountAdmin
    from alpaca_vault.db.migrate import upgrade_database

    db = Database.create(f"sqlite+aiosqlite:///{path}")
    await upgrade_database(db)
    admin = AccountAdmin(db)
    await admin.add_user("alice")
    return db, (await admin.create_token("alice")).token.get_secret_value()


async def test_an_inactive_users_token_is_refused(tmp_path: Path) -> None:
    from sqlalchemy import update

    from alpaca_vault.db.models import User

    db, token = await _sqlite_vault_with_a_token(tmp_path / "vault.db")
    try:
        verifier = BearerTokenVerifier(db)
        accepted = await verifier.verify_token(token)
        assert accepted is not None and accepted.scopes == ["alpaca-vault"]
        assert token not in accepted.model_dump_json()  # the SDK keeps this object: no copy of the secret
        async with db.session() as session:
            await session.execute(update(User).values(is_active=False))
        assert await verifier.verify_token(token) is None
    finally:
        await db.dispose()


async def test_a_token_is_verified_while_another_process_holds_the_sqlite_file(tmp_path: Path) -> None:
    """The inline lookup never waits for a lock; the async path waits it out and the token still works."""
    import asyncio
    import sqlite3
    import time

    path = tmp_path / "vault.db"
    db, token = await _sqlite_vault_with_a_token(path)
    try:
        verifier = BearerTokenVerifier(db)
        assert await verifier.verify_token(token) is not None  # records last use now: no write below
        await db.dispose()  # let the holder take the file
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        try:
            waiting = asyncio.create_task(verifier.verify_token(token))
            started = time.monotonic()
            await asyncio.sleep(0.2)
            # The loop kept running (an inline read waiting out a 5 s busy timeout would stall it)...
            assert time.monotonic() - started < 2.0
            assert not waiting.done()  # ...while the check waits on the async path, not refused
        finally:
            holder.execute("COMMIT")
            holder.close()
        accepted = await waiting
        assert accepted is not None and accepted.scopes == ["alpaca-vault"]
    finally:
        await db.dispose()


async def test_removing_a_user_deletes_its_credentials_on_sqlite_too(tmp_path: Path) -> None:
    from pydantic import SecretStr
    from sqlalchemy import func, select

    from alpaca_vault.accounts import AccountAdmin
    from alpaca_vault.db.migrate import upgrade_database
    from alpaca_vault.db.models import ApiToken, Credential
    from alpaca_vault.vault.credentials import CredentialService
    from alpaca_vault.vault.keyring import KeyRing, generate_key

    db = Database.create(f"sqlite+aiosqlite:///{tmp_path / 'vault.db'}")
    try:
        await upgrade_database(db)
        admin = AccountAdmin(db)
        vault = CredentialService(db, KeyRing.load(generate_key(), tmp_path))
        for name in ("alice", "bob"):
            user = await admin.add_user(name)
            await admin.create_token(name)
            await vault.store(
                user.id, "paper", "paper", SecretStr(f"PK{name.upper():0<18}"), SecretStr("s" * 40)
            )
        removed = await admin.remove_user("alice")
        assert (removed.credentials, removed.tokens) == (1, 1)
        async with db.session() as session:
            for table in (Credential, ApiToken):
                owners = (await session.scalars(select(table.user_id))).all()
                assert len(owners) == 1 and owners[0] != removed.id
                assert await session.scalar(select(func.count()).select_from(table)) == 1
    finally:
        await db.dispose()
